//! Isolation and limits (issue 6), each checked from inside a real container.

mod common;
use common::*;

/// Docker's default 14 capabilities, as the kernel prints them in /proc/PID/status.
const DOCKER_DEFAULT_CAPS: &str = "00000000a80425fb";

fn run(sim: &SimHost, args: &[&str]) -> Out {
    let mut full = vec!["run", "--rm"];
    full.extend_from_slice(args);
    sim.dockling(&full)
}

fn status_field(text: &str, field: &str) -> String {
    text.lines().find_map(|l| l.strip_prefix(field)).map(|v| v.trim().to_string()).unwrap_or_default()
}

#[test]
fn default_capabilities_no_new_privs_and_seccomp() {
    let sim = SimHost::new("iso-defaults");
    sim.image("busybox");
    let o = run(&sim, &["busybox", "cat", "/proc/self/status"]);
    assert!(o.ok(), "{o}");
    for field in ["CapEff:", "CapPrm:", "CapBnd:", "CapInh:"] {
        assert_eq!(status_field(&o.stdout, field), DOCKER_DEFAULT_CAPS, "{field} in\n{}", o.stdout);
    }
    assert_eq!(status_field(&o.stdout, "CapAmb:"), "0000000000000000");
    assert_eq!(status_field(&o.stdout, "NoNewPrivs:"), "1");
    assert_eq!(status_field(&o.stdout, "Seccomp:"), "2", "a seccomp filter is installed");
    let lifted = run(&sim, &["--security-opt", "no-new-privileges=false", "busybox", "cat", "/proc/self/status"]);
    assert_eq!(status_field(&lifted.stdout, "NoNewPrivs:"), "0", "{lifted}");

    // inspect reads the same facts from the kernel.
    sim.run_d(&["--name", "insp", "busybox", "sleep", "60"]);
    let j = sim.inspect("insp");
    assert_eq!(j.path("Security.CapEff").as_str(), Some(DOCKER_DEFAULT_CAPS));
    assert_eq!(j.path("Security.NoNewPrivs").as_bool(), Some(true));
    assert_eq!(j.path("Security.Seccomp").as_str(), Some("filter"));
    sim.finish();
}

#[test]
fn dangerous_operations_fail_and_kernel_paths_are_protected() {
    let sim = SimHost::new("iso-deny");
    sim.image("busybox");
    for (what, cmd) in [
        ("mount", "mkdir -p /m && mount -t tmpfs none /m"),
        ("ip link add", "ip link add d0 type dummy || ip link add v0 type veth peer name v1"),
        ("reboot", "reboot -f"),
        ("loading a module", "insmod /nonexistent.ko"),
        ("writing /proc/sys", "echo 1 > /proc/sys/kernel/panic"),
    ] {
        let o = run(&sim, &["busybox", "sh", "-c", cmd]);
        assert!(!o.ok(), "{what} should fail inside the container:\n{o}");
    }
    // Masked files read empty (those this kernel has); read-only ones refuse writes.
    let o = run(&sim, &["busybox", "sh", "-c", "for f in /proc/kcore /proc/keys /proc/timer_list /proc/sched_debug; do [ -e $f ] && echo $f=$(cat $f | wc -c); done; true"]);
    assert!(o.ok(), "{o}");
    let masked: Vec<&str> = o.stdout.lines().collect();
    assert!(!masked.is_empty(), "no masked file found to check:\n{o}");
    for line in masked {
        assert!(line.ends_with("=0"), "masked path is readable: {line}");
    }
    let o = run(&sim, &["busybox", "sh", "-c", "echo 1 > /proc/sysrq-trigger"]);
    assert!(!o.ok(), "{o}");
    sim.finish();
}

#[test]
fn cap_add_and_privileged_lift_the_limits() {
    let sim = SimHost::new("iso-caps");
    sim.image("busybox");
    let o = run(
        &sim,
        &["--cap-add", "NET_ADMIN", "busybox", "sh", "-c", "ip link add v0 type veth peer name v1 && ip link show v0"],
    );
    assert!(o.ok() && o.stdout.contains("v0"), "--cap-add NET_ADMIN should allow ip link add:\n{o}");
    let o = run(&sim, &["--cap-drop", "ALL", "--cap-add", "CHOWN", "busybox", "grep", "CapEff", "/proc/self/status"]);
    assert!(o.stdout.contains("0000000000000001"), "{o}");
    let o = run(
        &sim,
        &[
            "--privileged",
            "busybox",
            "sh",
            "-c",
            "grep -E 'CapEff|Seccomp:' /proc/self/status; mkdir -p /m && mount -t tmpfs none /m && echo mounted",
        ],
    );
    assert!(o.ok() && o.stdout.contains("mounted"), "{o}");
    assert_eq!(status_field(&o.stdout, "Seccomp:"), "0", "{o}");
    assert_ne!(status_field(&o.stdout, "CapEff:"), DOCKER_DEFAULT_CAPS, "{o}");
    let bad = sim.dockling(&["run", "--rm", "--cap-add", "BOGUS", "busybox", "true"]);
    assert_eq!(bad.code(), Some(125), "{bad}");
    assert_eq!(bad.stderr_lines().len(), 1, "{bad}");
    sim.finish();
}

#[test]
fn seccomp_blocks_user_namespaces_unless_unconfined() {
    let sim = SimHost::new("iso-seccomp");
    sim.image("busybox");
    let denied = run(&sim, &["busybox", "unshare", "-U", "true"]);
    assert!(!denied.ok(), "unshare -U must be refused by the default filter:\n{denied}");
    assert!(denied.stderr.contains("not permitted"), "{denied}");
    let allowed = run(&sim, &["--security-opt", "seccomp=unconfined", "busybox", "unshare", "-U", "true"]);
    assert!(allowed.ok(), "seccomp=unconfined should allow it:\n{allowed}");
    sim.finish();
}

#[test]
fn pids_and_memory_limits_hold() {
    let sim = SimHost::new("iso-limits");
    sim.image("busybox");
    // A fork bomb stops at --pids-limit.
    let bomb = "i=0; while [ $i -lt 60 ]; do sleep 3 & i=$((i+1)); done; echo all-started";
    let limited = run(&sim, &["--pids-limit", "20", "busybox", "sh", "-c", bomb]);
    assert!(
        !limited.stdout.contains("all-started") && limited.stderr.contains("can't fork"),
        "60 processes started despite --pids-limit 20:\n{limited}"
    );
    let free = run(&sim, &["busybox", "sh", "-c", bomb]);
    assert!(free.stdout.contains("all-started"), "without a limit the same loop should succeed:\n{free}");
    // A process over --memory is killed: exit 137 and OOMKilled in inspect.
    let hog = "x=a; while true; do x=$x$x; done";
    let o = run(&sim, &["-m", "16m", "busybox", "sh", "-c", hog]);
    assert_eq!(o.code(), Some(137), "{o}");
    sim.run_d(&["--name", "hog", "-m", "16m", "busybox", "sh", "-c", hog]);
    assert_eq!(sim.wait_exited("hog"), 137);
    let j = sim.inspect("hog");
    assert_eq!(j.path("State.OOMKilled").as_bool(), Some(true), "{}", sim.dockling_ok(&["inspect", "hog"]));
    let row = sim.ps_row("hog").unwrap_or_default();
    assert!(row.contains("Exited (137)"), "{row}");
    sim.finish();
}

#[test]
fn user_read_only_volumes_and_tmpfs() {
    let sim = SimHost::new("iso-fs");
    sim.image("busybox");
    let o = run(&sim, &["--user", "1000", "busybox", "id", "-u"]);
    assert_eq!(o.stdout.trim(), "1000", "{o}");
    let o = run(&sim, &["--user", "1000", "busybox", "grep", "CapEff", "/proc/self/status"]);
    assert!(o.stdout.contains("0000000000000000"), "a non-root user has no effective capabilities:\n{o}");

    let vol = sim.tmp.join("vol");
    std::fs::create_dir_all(&vol).unwrap();
    let spec = format!("{}:/data", vol.display());
    let o = run(&sim, &["--read-only", "-v", &spec, "--tmpfs", "/scratch", "busybox", "sh", "-c",
        "touch /x 2>/dev/null && echo root-writable; touch /scratch/y && echo tmpfs-ok; echo hi > /data/out && echo volume-ok"]);
    assert!(o.ok(), "{o}");
    assert!(!o.stdout.contains("root-writable"), "--read-only root accepted a write:\n{o}");
    assert!(o.stdout.contains("tmpfs-ok") && o.stdout.contains("volume-ok"), "{o}");
    assert_eq!(
        std::fs::read_to_string(vol.join("out")).unwrap_or_default(),
        "hi\n",
        "the volume write reached the host"
    );
    let ro = format!("{}:/data:ro", vol.display());
    let o = run(&sim, &["-v", &ro, "busybox", "sh", "-c", "echo x > /data/out"]);
    assert!(!o.ok(), "a :ro volume accepted a write:\n{o}");
    for bad in ["relative:/data", "/does/not/exist:/data", "/tmp:relative"] {
        sim.assert_rejected(&["run", "--rm", "-v", bad, "busybox", "true"], bad);
    }
    sim.finish();
}

#[test]
fn stats_and_cgroups_come_and_go_with_the_container() {
    let sim = SimHost::new("iso-cgroups");
    sim.image("busybox");
    sim.run_d(&["--name", "st", "--memory", "32m", "--cpus", "0.5", "busybox", "sh", "-c", "sleep 60"]);
    let j = sim.inspect("st");
    let dirs: Vec<String> = j
        .path("HostConfig.CgroupPaths")
        .as_array()
        .map(|a| a.iter().filter_map(|d| d.as_str().map(String::from)).collect())
        .unwrap_or_default();
    assert!(!dirs.is_empty(), "no cgroup recorded");
    for d in &dirs {
        assert!(std::path::Path::new(d).exists(), "cgroup {d} missing while running");
    }
    let limit_file = dirs
        .iter()
        .map(|d| std::path::Path::new(d).join("memory.limit_in_bytes"))
        .chain(dirs.iter().map(|d| std::path::Path::new(d).join("memory.max")))
        .find(|p| p.exists());
    let limit = limit_file.and_then(|p| std::fs::read_to_string(p).ok()).unwrap_or_default();
    assert_eq!(limit.trim(), (32u64 << 20).to_string());
    let o = sim.dockling_ok(&["stats", "--no-stream", "st"]);
    assert!(o.contains("st") && o.contains("MiB"), "{o}");
    sim.dockling_ok(&["rm", "-f", "st"]);
    for d in &dirs {
        assert!(!std::path::Path::new(d).exists(), "cgroup {d} left behind");
    }
    sim.finish();
}

#[test]
fn caller_fds_do_not_leak_and_devices_are_restricted() {
    let sim = SimHost::new("iso-fds");
    sim.image("busybox");
    // A descriptor the caller holds (here the host's /) must not reach the container.
    let cmd = format!(
        "exec 7</ ; {} --root {} run --rm busybox sh -c 'ls /proc/self/fd/7/ && echo LEAKED; true'",
        bin(),
        shq(&sim.root.to_string_lossy())
    );
    let o = sim.sh(&cmd);
    assert!(o.ok() && !o.stdout.contains("LEAKED"), "fd 7 reached the container:\n{o}");
    sim.run_d(&["--name", "fds", "busybox", "sleep", "60"]);
    let o = sim.sh(&format!(
        "exec 7</ ; {} --root {} exec fds sh -c 'ls /proc/self/fd/7/ && echo LEAKED; ls /proc/self/fd'",
        bin(),
        shq(&sim.root.to_string_lossy())
    ));
    assert!(o.ok() && !o.stdout.contains("LEAKED"), "fd 7 reached an exec'd process:\n{o}");
    // Creating a block device node is allowed, opening it is not (Docker's allowlist)...
    let probe = "mknod /lp b 7 0 && dd if=/lp of=/dev/null bs=512 count=1 && echo OPENED";
    let o = run(&sim, &["busybox", "sh", "-c", probe]);
    assert!(!o.stdout.contains("OPENED") && o.stderr.contains("not permitted"), "a host block device opened:\n{o}");
    // ...while the usual ones work.
    let o = run(&sim, &["busybox", "sh", "-c", "echo x > /dev/null && head -c 4 /dev/urandom | wc -c"]);
    assert_eq!(o.stdout.trim(), "4", "{o}");
    sim.finish();
}

#[test]
fn image_symlinks_never_lead_mounts_onto_the_host() {
    let sim = SimHost::new("iso-symlink");
    // A hostile image: /etc and /data are symlinks to directories of the (simulated) host.
    let host_etc = sim.tmp.join("host-etc");
    let host_data = sim.tmp.join("host-data");
    let img = sim.tmp.join("evil");
    for d in [&host_etc, &host_data, &img.join("bin")] {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::copy(image_dir("busybox").join("bin/busybox"), img.join("bin/busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", img.join("bin/sh")).unwrap();
    std::os::unix::fs::symlink(&host_etc, img.join("etc")).unwrap();
    std::os::unix::fs::symlink(&host_data, img.join("data")).unwrap();
    // Links that would reach the host through where a runtime might park the host's tree
    // between pivot_root and unmounting it (ours is gone before any path is resolved).
    for (link, parked) in [("srv", "/.dockling-old-root"), ("opt", "/sys")] {
        std::os::unix::fs::symlink(format!("{parked}{}", host_data.display()), img.join(link)).unwrap();
    }
    sim.dockling_ok(&["import", &img.to_string_lossy(), "evil"]);
    let vol = sim.tmp.join("vol");
    std::fs::create_dir_all(&vol).unwrap();
    for target in ["/data/planted", "/srv/planted", "/opt/planted"] {
        let spec = format!("{}:{target}", vol.display());
        // Inside the container those links dangle: the run may fail, but only with one clear line.
        let o =
            sim.dockling(&["run", "--rm", "-v", &spec, "evil", "/bin/sh", "-c", "echo inside > /etc/hosts.copy; true"]);
        assert!(
            o.ok() || (o.code() == Some(125) && o.stderr_lines().len() == 1 && o.stderr.contains("in the container")),
            "{target}: {o}"
        );
    }
    let listing = |d: &std::path::Path| {
        std::fs::read_dir(d)
            .map(|r| r.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect::<Vec<_>>())
            .unwrap_or_default()
    };
    assert!(
        listing(&host_etc).is_empty(),
        "files appeared in the host's directory through the image's /etc: {:?}",
        listing(&host_etc)
    );
    assert!(
        listing(&host_data).is_empty(),
        "a volume target followed the image's symlink onto the host: {:?}",
        listing(&host_data)
    );
    sim.finish();
}

#[test]
fn tmpfs_is_noexec_nosuid_nodev_unless_asked() {
    let sim = SimHost::new("iso-tmpfs");
    sim.image("busybox");
    let script = "printf '#!/bin/sh\\necho ran\\n' > /t/s && chmod +x /t/s && /t/s";
    // Docker's default: a script on the tmpfs cannot be executed.
    let o = run(&sim, &["--network", "none", "--tmpfs", "/t", "busybox", "sh", "-c", script]);
    assert_eq!(o.code(), Some(126), "{o}");
    assert!(o.stderr.to_lowercase().contains("permission denied"), "{o}");
    let o = run(&sim, &["--network", "none", "--tmpfs", "/t", "busybox", "grep", " /t ", "/proc/mounts"]);
    assert!(["noexec", "nosuid", "nodev", "rw"].iter().all(|f| o.stdout.contains(f)), "{o}");
    // Control: with :exec it runs.
    let o = run(&sim, &["--network", "none", "--tmpfs", "/t:rw,exec,mode=1777", "busybox", "sh", "-c", script]);
    assert!(o.ok() && o.stdout == "ran\n", "{o}");

    // size= is honoured: 1 MiB holds 512 KiB but not 2 MiB.
    let o = run(
        &sim,
        &[
            "--network",
            "none",
            "--tmpfs",
            "/t:size=1m",
            "busybox",
            "sh",
            "-c",
            "df -k /t | tail -1; dd if=/dev/zero of=/t/a bs=1024 count=512 2>/dev/null && echo small-ok; \
         dd if=/dev/zero of=/t/b bs=1024 count=2048 2>/dev/null || echo big-refused",
        ],
    );
    assert!(o.stdout.contains(" 1024 "), "df shows a 1024 KiB tmpfs:\n{o}");
    assert!(o.stdout.contains("small-ok") && o.stdout.contains("big-refused"), "{o}");
    // ro and mode.
    let o = run(
        &sim,
        &[
            "--network",
            "none",
            "--tmpfs",
            "/t:ro,mode=700",
            "busybox",
            "sh",
            "-c",
            "stat -c %a /t; touch /t/x 2>/dev/null && echo wrote",
        ],
    );
    assert_eq!(o.stdout, "700\n", "{o}");

    // --explain prints the exact options.
    let o = sim.dockling(&[
        "--explain",
        "run",
        "--rm",
        "--network",
        "none",
        "--tmpfs",
        "/t:size=64m,exec",
        "busybox",
        "true",
    ]);
    assert!(o.ok(), "{o}");
    assert!(o.stderr.contains("mount -t tmpfs -o rw,exec,nosuid,nodev,size=67108864,mode=1777 tmpfs /t"), "{o}");

    // A bad option: one clear line, 125, and nothing created.
    for bad in ["/t:bogus", "/t:size=lots", "/t:uid=1000"] {
        let o = sim.dockling(&["run", "--name", "never", "--tmpfs", bad, "busybox", "true"]);
        assert_eq!(o.code(), Some(125), "{o}");
        assert_eq!(o.stderr.lines().count(), 1, "{o}");
        assert!(o.stderr.contains("invalid tmpfs"), "{o}");
    }
    let ps = sim.dockling_ok(&["ps", "-a"]);
    assert!(!ps.contains("never"), "{ps}");
    sim.finish();
}
