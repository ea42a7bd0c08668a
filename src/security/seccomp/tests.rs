use super::bpf::*;
use super::*;

const EPERM: u32 = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;
const ENOSYS: u32 = libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;
const ALLOW: u32 = libc::SECCOMP_RET_ALLOW;

/// Runs the program on one seccomp_data, as the kernel would (the opcodes we emit).
fn run_on(prog: &[libc::sock_filter], arch: u32, nr: u32, args: [u64; 6]) -> u32 {
    let mut data = [0u8; 64];
    data[0..4].copy_from_slice(&nr.to_ne_bytes());
    data[4..8].copy_from_slice(&arch.to_ne_bytes());
    for (i, a) in args.iter().enumerate() {
        data[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_ne_bytes());
    }
    let (mut pc, mut acc) = (0usize, 0u32);
    loop {
        let i = prog[pc];
        pc += 1;
        match i.code {
            LD_W_ABS => acc = u32::from_ne_bytes(data[i.k as usize..i.k as usize + 4].try_into().unwrap()),
            AND_K => acc &= i.k,
            RET_K => return i.k,
            JA => pc += i.k as usize,
            JEQ_K | JGE_K | JGT_K => {
                let taken = match i.code {
                    JEQ_K => acc == i.k,
                    JGE_K => acc >= i.k,
                    _ => acc > i.k,
                };
                pc += if taken { i.jt } else { i.jf } as usize;
            }
            other => panic!("unexpected opcode {other:#x}"),
        }
    }
}

fn caps(extra: &[&str]) -> Vec<String> {
    crate::security::capabilities::DEFAULT.iter().chain(extra).map(|s| s.to_string()).collect()
}

fn call(prog: &[libc::sock_filter], nr: libc::c_long, args: &[u64]) -> u32 {
    let mut a = [0u64; 6];
    a[..args.len()].copy_from_slice(args);
    run_on(prog, AUDIT_ARCH, nr as u32, a)
}

/// Syscalls numbered after the libc crate's constants (the same on every architecture).
const IO_URING_SETUP: libc::c_long = 425;
const IO_URING_ENTER: libc::c_long = 426;
const IO_URING_REGISTER: libc::c_long = 427;
const MOUNT_SETATTR: libc::c_long = 442;
const OPEN_TREE_ATTR: libc::c_long = 467;
/// ioctl requests (the libc crate's types for them differ between libcs).
const TIOCSTI: u64 = 0x5412;
const TIOCLINUX: u64 = 0x541C;
const TCGETS: u64 = 0x5401;

#[test]
fn allowed_syscalls_pass_and_everything_else_is_eperm() {
    let rules = profile::default_profile().unwrap().resolve(profile::ARCH).unwrap().select(&caps(&[]), (6, 1));
    let prog = bpf::compile(&rules).unwrap();
    for nr in 0..1024u32 {
        let want = match rules.syscalls.get(&nr).map(|r| r.as_slice()) {
            None => EPERM,
            Some([only]) if only.conds.is_empty() => only.action,
            Some(_) => continue, // conditional: checked below
        };
        assert_eq!(run_on(&prog, AUDIT_ARCH, nr, [0; 6]), want, "syscall {nr}");
    }
    for nr in [libc::SYS_read, libc::SYS_execve, libc::SYS_openat, libc::SYS_capset, libc::SYS_setresuid] {
        assert_eq!(call(&prog, nr, &[]), ALLOW, "{nr}");
    }
    for nr in 450..1024 {
        if !rules.syscalls.contains_key(&nr) {
            assert_eq!(run_on(&prog, AUDIT_ARCH, nr, [0; 6]), EPERM, "new syscall {nr}");
        }
    }
    for nr in [
        IO_URING_SETUP,
        IO_URING_ENTER,
        IO_URING_REGISTER,
        MOUNT_SETATTR,
        OPEN_TREE_ATTR,
        libc::SYS_mount,
        libc::SYS_umount2,
        libc::SYS_open_tree,
        libc::SYS_move_mount,
        libc::SYS_fsopen,
        libc::SYS_userfaultfd,
        libc::SYS_bpf,
        libc::SYS_keyctl,
        libc::SYS_add_key,
        libc::SYS_unshare,
        libc::SYS_setns,
        libc::SYS_reboot,
        libc::SYS_init_module,
        libc::SYS_kexec_load,
        libc::SYS_pivot_root,
        libc::SYS_perf_event_open,
        libc::SYS_open_by_handle_at,
    ] {
        assert_eq!(call(&prog, nr, &[]), EPERM, "syscall {nr}");
    }
    assert_eq!(call(&prog, libc::SYS_clone3, &[]), ENOSYS, "clone3: libc falls back to clone");
    // The shared returns are in use (188 instructions without them).
    assert!(prog.len() < 140, "{} instructions", prog.len());
    assert!(prog.iter().filter(|i| i.code == RET_K).count() < 20);
}

#[test]
fn argument_conditions() {
    let prog = program(&caps(&[])).unwrap();
    // personality: the queries and PER_LINUX variants only.
    for p in [0u64, 8, 0x20000, 0x20008, 0xffff_ffff] {
        assert_eq!(call(&prog, libc::SYS_personality, &[p]), ALLOW, "personality({p:#x})");
    }
    for p in [0x0040000u64, 0x0400000, 1, 0x1_0000_0000, 0xffff_ffff_ffff_ffff] {
        assert_eq!(call(&prog, libc::SYS_personality, &[p]), EPERM, "personality({p:#x})");
    }
    // clone: no namespace flags without CAP_SYS_ADMIN.
    let fork = libc::SIGCHLD as u64;
    let thread =
        (libc::CLONE_VM | libc::CLONE_FS | libc::CLONE_FILES | libc::CLONE_SIGHAND | libc::CLONE_THREAD) as u64;
    assert_eq!(call(&prog, libc::SYS_clone, &[fork]), ALLOW);
    assert_eq!(call(&prog, libc::SYS_clone, &[thread]), ALLOW);
    for ns in [libc::CLONE_NEWUSER, libc::CLONE_NEWNS, libc::CLONE_NEWNET, libc::CLONE_NEWPID, libc::CLONE_NEWCGROUP] {
        assert_eq!(call(&prog, libc::SYS_clone, &[fork | ns as u64]), EPERM, "clone({ns:#x})");
    }
    // socket: not AF_VSOCK, also with junk in the upper half.
    assert_eq!(call(&prog, libc::SYS_socket, &[libc::AF_INET as u64, libc::SOCK_STREAM as u64]), ALLOW);
    assert_eq!(call(&prog, libc::SYS_socket, &[libc::AF_UNIX as u64]), ALLOW);
    assert_eq!(call(&prog, libc::SYS_socket, &[libc::AF_VSOCK as u64]), EPERM);
    assert_eq!(call(&prog, libc::SYS_socket, &[0x1_0000_0000 | libc::AF_VSOCK as u64]), EPERM);
    // ioctl: TIOCSTI and TIOCLINUX refused on their low 32 bits; TCGETS fine.
    for high in [0u64, 0xdead_beef_0000_0000] {
        assert_eq!(call(&prog, libc::SYS_ioctl, &[0, high | TIOCSTI]), EPERM);
        assert_eq!(call(&prog, libc::SYS_ioctl, &[0, high | TIOCLINUX]), EPERM);
        assert_eq!(call(&prog, libc::SYS_ioctl, &[0, high | TCGETS]), ALLOW);
    }
    assert_eq!(call(&prog, libc::SYS_ioctl, &[TIOCSTI, TCGETS]), ALLOW, "only arg 1 counts");
}

#[test]
fn capabilities_open_their_syscalls() {
    let default = program(&caps(&[])).unwrap();
    let admin = program(&caps(&["CAP_SYS_ADMIN"])).unwrap();
    for nr in [libc::SYS_sethostname, libc::SYS_setns, libc::SYS_unshare, libc::SYS_bpf] {
        assert_eq!(call(&default, nr, &[]), EPERM, "{nr}");
        assert_eq!(call(&admin, nr, &[]), ALLOW, "{nr} with CAP_SYS_ADMIN");
    }
    let newuser = (libc::SIGCHLD | libc::CLONE_NEWUSER) as u64;
    assert_eq!(call(&admin, libc::SYS_clone, &[newuser]), ALLOW);
    assert_eq!(call(&admin, libc::SYS_clone3, &[]), ALLOW);
    // The mount family stays denied with CAP_SYS_ADMIN (masked paths must hold).
    for nr in [libc::SYS_mount, libc::SYS_umount2, MOUNT_SETATTR, OPEN_TREE_ATTR, libc::SYS_open_tree, libc::SYS_fsopen]
    {
        assert_eq!(call(&admin, nr, &[]), EPERM, "{nr} with CAP_SYS_ADMIN");
    }
    for (cap, nr) in [
        ("CAP_SYS_MODULE", libc::SYS_finit_module),
        ("CAP_SYS_PTRACE", libc::SYS_kcmp),
        ("CAP_SYS_TIME", libc::SYS_settimeofday),
        ("CAP_SYS_BOOT", libc::SYS_reboot),
        ("CAP_DAC_READ_SEARCH", libc::SYS_open_by_handle_at),
        ("CAP_SYS_NICE", libc::SYS_mbind),
        ("CAP_SYSLOG", libc::SYS_syslog),
    ] {
        assert_eq!(call(&default, nr, &[]), EPERM, "{nr}");
        assert_eq!(call(&program(&caps(&[cap])).unwrap(), nr, &[]), ALLOW, "{nr} with {cap}");
    }
    // Dropping every capability keeps the basics.
    let none = program(&[]).unwrap();
    assert_eq!(call(&none, libc::SYS_read, &[]), ALLOW);
}

#[test]
fn other_architectures_and_x32_are_killed() {
    let prog = program(&caps(&[])).unwrap();
    assert_eq!(run_on(&prog, AUDIT_ARCH ^ 1, libc::SYS_getpid as u32, [0; 6]), libc::SECCOMP_RET_KILL_PROCESS);
    #[cfg(target_arch = "x86_64")]
    {
        let getpid = X32_SYSCALL_BIT | libc::SYS_getpid as u32;
        assert_eq!(run_on(&prog, AUDIT_ARCH, getpid, [0; 6]), libc::SECCOMP_RET_KILL_PROCESS, "x32 ABI");
        assert_eq!(run_on(&prog, AUDIT_ARCH, u32::MAX, [0; 6]), EPERM, "-1 (a tracer skipping a call)");
    }
}

/// Every comparison, on both halves, against a direct evaluation.
#[test]
fn comparisons_on_64_bit_arguments() {
    use profile::{Cmp, Rule, Rules};
    let values = [0u64, 1, 5, 0xffff_ffff, 0x1_0000_0000, 0x1_0000_0005, 0x2_0000_0000, u64::MAX];
    for &v in &values {
        let cmps = [
            Cmp::Eq(v),
            Cmp::Ne(v),
            Cmp::Lt(v),
            Cmp::Le(v),
            Cmp::Gt(v),
            Cmp::Ge(v),
            Cmp::MaskedEq { mask: 0xffff_0000_0000_000f, value: v & 0xffff_0000_0000_000f },
        ];
        for cmp in cmps {
            let rules = Rules {
                default: EPERM,
                syscalls: [(7, vec![Rule { conds: vec![(3, cmp)], action: ALLOW }])].into_iter().collect(),
            };
            let prog = bpf::compile(&rules).unwrap();
            for &a in &values {
                let want = match cmp {
                    Cmp::Eq(v) => a == v,
                    Cmp::Ne(v) => a != v,
                    Cmp::Lt(v) => a < v,
                    Cmp::Le(v) => a <= v,
                    Cmp::Gt(v) => a > v,
                    Cmp::Ge(v) => a >= v,
                    Cmp::MaskedEq { mask, value } => a & mask == value,
                };
                let got = run_on(&prog, AUDIT_ARCH, 7, [0, 0, 0, a, 0, 0]);
                assert_eq!(got == ALLOW, want, "{cmp:?} on {a:#x}");
                assert_eq!(run_on(&prog, AUDIT_ARCH, 8, [0, 0, 0, a, 0, 0]), EPERM);
            }
        }
    }
}

/// Long programs jump through JA; many rules per syscall chain correctly.
#[test]
fn long_programs_and_rule_chains() {
    use profile::{Cmp, Rule, Rules};
    let mut syscalls = std::collections::BTreeMap::new();
    for nr in (0..400).step_by(2) {
        let rule = |v: u64, action| Rule { conds: vec![(0, Cmp::Eq(v))], action };
        syscalls.insert(nr, vec![rule(1, ALLOW), rule(2, ENOSYS), rule(3, ALLOW)]);
    }
    let rules = Rules { default: EPERM, syscalls };
    let prog = bpf::compile(&rules).unwrap();
    assert!(prog.iter().any(|i| i.code == JA));
    for nr in 0..402u32 {
        for (a, want) in [(1, ALLOW), (2, ENOSYS), (3, ALLOW), (4, EPERM)] {
            let want = if nr % 2 == 0 && nr < 400 { want } else { EPERM };
            assert_eq!(run_on(&prog, AUDIT_ARCH, nr, [a, 0, 0, 0, 0, 0]), want, "{nr}({a})");
        }
    }
}

/// Containers-common's profile (Podman's default), when installed, as a reference: what
/// we allow by default it allows too, except syscalls newer than that file.
#[test]
fn a_subset_of_the_reference_profile() {
    let Ok(text) = std::fs::read_to_string("/usr/share/containers/seccomp.json") else {
        return;
    };
    let reference: profile::Profile = serde_json::from_str(&text).unwrap();
    let c = caps(&[]);
    let theirs = bpf::compile(&reference.resolve(profile::ARCH).unwrap().select(&c, (6, 1))).unwrap();
    let ours = program(&c).unwrap();
    let newer = [
        "futex_waitv",
        "cachestat",
        "fchmodat2",
        "map_shadow_stack",
        "futex_wake",
        "futex_wait",
        "futex_requeue",
        "mseal",
        "setxattrat",
        "getxattrat",
        "listxattrat",
        "removexattrat",
    ];
    let newer: Vec<u32> = newer.iter().map(|n| syscalls::number(n).unwrap()).collect();
    for nr in 0..1024u32 {
        if call(&ours, nr as libc::c_long, &[]) == ALLOW && !newer.contains(&nr) {
            assert_eq!(run_on(&theirs, AUDIT_ARCH, nr, [0; 6]), ALLOW, "we allow {nr}, the reference does not");
        }
    }
    // Notable denials both make.
    for nr in [IO_URING_SETUP, libc::SYS_kexec_load, libc::SYS_init_module, libc::SYS_open_by_handle_at] {
        assert_ne!(call(&theirs, nr, &[]), ALLOW, "{nr}");
        assert_ne!(call(&ours, nr, &[]), ALLOW, "{nr}");
    }
    assert_ne!(call(&theirs, libc::SYS_personality, &[0x0040000]), ALLOW);
}

/// The program as the JSON parsed at run time gives it (the path a profile sent by an
/// engine takes), as (code, jt, jf, k).
fn from_json(caps: &[String]) -> Vec<(u16, u8, u8, u32)> {
    let rules = profile::default_profile().unwrap().resolve(profile::ARCH).unwrap().select(caps, (6, 1));
    insns(&bpf::compile(&rules).unwrap())
}

fn insns(prog: &[libc::sock_filter]) -> Vec<(u16, u8, u8, u32)> {
    prog.iter().map(|i| (i.code, i.jt, i.jf, i.k)).collect()
}

/// Capability sets that choose differently: Docker's default, none, each with one or
/// more of the capabilities the profile mentions, everything.
fn cap_sets() -> Vec<Vec<String>> {
    let all: Vec<String> = ::caps::all().iter().map(|c| c.to_string()).collect();
    vec![
        caps(&[]),
        vec![],
        caps(&["CAP_SYS_ADMIN"]),
        caps(&["CAP_SYS_PTRACE", "CAP_SYS_NICE"]),
        vec!["cap_sys_time".to_string()],
        caps(&["CAP_NET_ADMIN"]),
        all,
    ]
}

#[test]
fn the_build_time_tables_give_the_runtime_parse_s_program() {
    let resolved = builtin::resolved().expect("build.rs made the tables (not cross-compiled)");
    for caps in cap_sets() {
        let tables = bpf::compile(&resolved.select(&caps, (6, 1))).unwrap();
        assert_eq!(insns(&tables), from_json(&caps), "{caps:?}");
        // And what a container gets: the precompiled program where it fits, else the tables.
        assert_eq!(insns(&program(&caps).unwrap()), from_json(&caps), "{caps:?}");
    }
}

#[test]
fn the_precompiled_program_is_for_containers_without_the_mentioned_capabilities() {
    let docker_default = caps(&[]);
    let ready = builtin::precompiled(&docker_default).expect("Docker's default set gets the precompiled program");
    assert_eq!(insns(ready), from_json(&docker_default));
    assert_eq!(insns(ready), from_json(&[]));
    assert!(builtin::precompiled(&caps(&["CAP_NET_ADMIN"])).is_some(), "a capability no entry names");
    for cap in ["CAP_SYS_ADMIN", "cap_sys_ptrace", "CAP_BPF"] {
        assert!(builtin::precompiled(&caps(&[cap])).is_none(), "{cap}");
    }
    // The list it is checked against is the profile's.
    let parsed = profile::default_profile().unwrap();
    let resolved = parsed.resolve(profile::ARCH).unwrap();
    let mentioned = resolved.mentioned_caps();
    assert!(mentioned.contains(&"CAP_SYS_ADMIN") && mentioned.contains(&"CAP_SYSLOG"), "{mentioned:?}");
    for cap in mentioned {
        assert!(builtin::precompiled(&[cap.to_string()]).is_none(), "{cap}");
    }
}

/// Docker's own filter, as it hands it over in config.json (`linux.seccomp`), compiled
/// by our generator: its allow list, its argument conditions, its default.
#[test]
fn dockers_spec_filter_compiles_with_its_conditions() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/oci-runtime/docker-20.10-run-bridge.config.json");
    let spec: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let prog = compile_spec(&spec["linux"]["seccomp"]).unwrap();
    assert_eq!(call(&prog, libc::SYS_read, &[]), ALLOW);
    assert_eq!(call(&prog, libc::SYS_mount, &[]), EPERM);
    assert_eq!(call(&prog, libc::SYS_reboot, &[]), EPERM);
    // personality: allowed only for the values Docker lists.
    assert_eq!(call(&prog, libc::SYS_personality, &[0]), ALLOW);
    assert_eq!(call(&prog, libc::SYS_personality, &[8]), ALLOW);
    assert_eq!(call(&prog, libc::SYS_personality, &[0x0bad_c0de]), EPERM);
    // clone: only without namespace flags (the masked comparison Docker writes).
    assert_eq!(call(&prog, libc::SYS_clone, &[libc::SIGCHLD as u64]), ALLOW);
    assert_eq!(call(&prog, libc::SYS_clone, &[libc::CLONE_NEWNS as u64 | libc::SIGCHLD as u64]), EPERM);
}

#[test]
fn a_spec_filter_with_an_unknown_action_is_refused() {
    let bad = serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_NOTIFY"}]});
    let e = compile_spec(&bad).unwrap_err().to_string();
    assert!(e.contains("SCMP_ACT_NOTIFY"), "{e}");
}
