//! Images (issue 5): the OCI store, `pull` from a real registry, `save`/`load`,
//! whiteouts and the rest of layer unpacking, hostile and corrupt input, `rmi` and
//! `image prune`, and `run` honouring the image config.
//!
//! Every test runs in its own simulated host (see `common`). The registry is Debian's
//! `docker-registry` bound on 127.0.0.1 inside it, and images get there with Debian's
//! `skopeo` from OCI archives these tests build from `rootfs/out/busybox`, so no
//! traffic leaves the test's own namespaces. skopeo's blob cache goes to a tmpfs that
//! exists only in the simulated host's mount namespace.

mod common;
use common::*;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const REGISTRY: &str = "127.0.0.1:5000";

// ---------------------------------------------------------------------------
// Building images by hand (OCI archives and docker-save tarballs)
// ---------------------------------------------------------------------------

fn sha(data: &[u8]) -> String {
    format!("{:x}", Sha256::digest(data))
}

#[derive(Clone, Copy)]
enum Comp {
    None,
    Gzip,
    Zstd,
}

fn compress(data: &[u8], comp: Comp) -> (Vec<u8>, &'static str) {
    match comp {
        Comp::None => (data.to_vec(), "application/vnd.oci.image.layer.v1.tar"),
        Comp::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(data).unwrap();
            (e.finish().unwrap(), "application/vnd.oci.image.layer.v1.tar+gzip")
        }
        Comp::Zstd => (zstd::encode_all(data, 3).unwrap(), "application/vnd.oci.image.layer.v1.tar+zstd"),
    }
}

/// An uncompressed layer tar of a directory tree.
fn tar_of_dir(dir: &Path) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    b.follow_symlinks(false);
    b.mode(tar::HeaderMode::Complete);
    b.append_dir_all(".", dir).unwrap();
    b.into_inner().unwrap()
}

/// A tar entry made by hand (the tar crate's path checks are bypassed, on purpose,
/// so hostile names can be written).
struct E {
    path: &'static str,
    kind: tar::EntryType,
    data: Vec<u8>,
    link: &'static str,
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: u64,
    dev: (u32, u32),
}

fn e(path: &'static str, kind: tar::EntryType) -> E {
    let mode = if kind == tar::EntryType::Directory { 0o755 } else { 0o644 };
    E { path, kind, data: Vec::new(), link: "", mode, uid: 0, gid: 0, mtime: 1_600_000_000, dev: (0, 0) }
}
fn file(path: &'static str, data: &str) -> E {
    E { data: data.as_bytes().to_vec(), ..e(path, tar::EntryType::Regular) }
}
fn dir(path: &'static str) -> E {
    e(path, tar::EntryType::Directory)
}
fn link(path: &'static str, kind: tar::EntryType, target: &'static str) -> E {
    E { link: target, mode: 0o777, ..e(path, kind) }
}

fn tar_of(entries: &[E]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for en in entries {
        let mut h = tar::Header::new_gnu();
        {
            let name = &mut h.as_old_mut().name;
            name[..en.path.len()].copy_from_slice(en.path.as_bytes());
        }
        if !en.link.is_empty() {
            let ln = &mut h.as_old_mut().linkname;
            ln[..en.link.len()].copy_from_slice(en.link.as_bytes());
        }
        h.set_entry_type(en.kind);
        h.set_size(en.data.len() as u64);
        h.set_mode(en.mode);
        h.set_uid(en.uid);
        h.set_gid(en.gid);
        h.set_mtime(en.mtime);
        if matches!(en.kind, tar::EntryType::Char | tar::EntryType::Block) {
            h.set_device_major(en.dev.0).unwrap();
            h.set_device_minor(en.dev.1).unwrap();
        }
        h.set_cksum();
        b.append(&h, &en.data[..]).unwrap();
    }
    b.into_inner().unwrap()
}

fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// Blobs plus top-level index entries; written as an OCI archive (or a docker save).
#[derive(Default)]
struct Oci {
    blobs: Vec<(String, Vec<u8>)>,
    index: Vec<Value>,
}

impl Oci {
    fn blob(&mut self, data: Vec<u8>) -> (String, usize) {
        let hex = sha(&data);
        let n = data.len();
        if !self.blobs.iter().any(|(h, _)| *h == hex) {
            self.blobs.push((hex.clone(), data));
        }
        (hex, n)
    }

    /// An image from uncompressed layer tars; `config` is the runtime part ("config").
    /// Returns the manifest's descriptor.
    fn image(&mut self, layers: &[(Vec<u8>, Comp)], config: Value, diff_ids: Option<Vec<String>>) -> Value {
        let mut descs = Vec::new();
        let mut diffs = Vec::new();
        for (tar, comp) in layers {
            diffs.push(format!("sha256:{}", sha(tar)));
            let (data, media) = compress(tar, *comp);
            let (hex, size) = self.blob(data);
            descs.push(json!({ "mediaType": media, "digest": format!("sha256:{hex}"), "size": size }));
        }
        let cfg = json!({
            "architecture": arch(), "os": "linux", "created": "2024-01-02T03:04:05Z",
            "config": config,
            "rootfs": { "type": "layers", "diff_ids": diff_ids.unwrap_or(diffs) },
        });
        let (chex, csize) = self.blob(serde_json::to_vec(&cfg).unwrap());
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": { "mediaType": "application/vnd.oci.image.config.v1+json", "digest": format!("sha256:{chex}"), "size": csize },
            "layers": descs,
        });
        let (mhex, msize) = self.blob(serde_json::to_vec(&manifest).unwrap());
        json!({ "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": format!("sha256:{mhex}"), "size": msize })
    }

    /// A manifest list over (descriptor, architecture) pairs; returns its descriptor.
    fn list(&mut self, entries: &[(Value, &str)]) -> Value {
        let manifests: Vec<Value> = entries
            .iter()
            .map(|(d, a)| {
                let mut d = d.clone();
                d["platform"] = json!({ "os": "linux", "architecture": a });
                d
            })
            .collect();
        let index = json!({ "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests });
        let (hex, size) = self.blob(serde_json::to_vec(&index).unwrap());
        json!({ "mediaType": "application/vnd.oci.image.index.v1+json", "digest": format!("sha256:{hex}"), "size": size })
    }

    /// Names `desc` in the archive's index.json (`ref.name` as skopeo writes it).
    fn name(&mut self, desc: &Value, name: Option<&str>) {
        let mut d = desc.clone();
        if let Some(n) = name {
            d["annotations"] = json!({ "org.opencontainers.image.ref.name": n });
        }
        self.index.push(d);
    }

    fn write(&self, path: &Path) {
        let index = json!({ "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": self.index });
        let mut files = vec![("oci-layout".to_string(), br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec())];
        files.extend(self.blobs.iter().map(|(hex, data)| (format!("blobs/sha256/{hex}"), data.clone())));
        files.push(("index.json".to_string(), serde_json::to_vec(&index).unwrap()));
        write_tar(path, &files, &[]);
    }
}

/// A tarball of files (name, content) and symlinks (name, target).
fn write_tar(path: &Path, files: &[(String, Vec<u8>)], symlinks: &[(&str, &str)]) {
    let mut b = tar::Builder::new(fs::File::create(path).unwrap());
    for (name, data) in files {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, &data[..]).unwrap();
    }
    for (name, target) in symlinks {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        h.set_mode(0o777);
        h.set_link_name(target).unwrap();
        h.set_cksum();
        b.append_data(&mut h, name, std::io::empty()).unwrap();
    }
    b.into_inner().unwrap().flush().unwrap();
}

fn busybox_layer() -> Vec<u8> {
    let d = image_dir("busybox");
    assert!(d.join("bin/busybox").exists(), "{} missing: run rootfs/build.sh busybox", d.display());
    tar_of_dir(&d)
}

// ---------------------------------------------------------------------------
// The registry and the store
// ---------------------------------------------------------------------------

/// docker-registry on port 5000 inside the simulated host (killed with it): reached as
/// 127.0.0.1:5000 (loopback: plain HTTP) or 198.51.100.1:5000 (needs `--insecure`).
struct Registry {
    _proc: Proc,
    data: PathBuf,
}

fn start_registry(sim: &SimHost) -> Registry {
    start_registry_with(sim, "")
}

/// Like [`start_registry`], with more configuration (e.g. an `auth:` section).
fn start_registry_with(sim: &SimHost, extra: &str) -> Registry {
    // skopeo keeps a blob-info cache in /var/lib/containers: the simulated host gets a
    // tmpfs /var/lib of its own (nothing is created on the real host's disk).
    sim.sh_ok("mountpoint -q /var/lib/containers || { mount -t tmpfs dockling-test-varlib /var/lib && mkdir -p /var/lib/containers; }");
    let data = sim.tmp.join("registry");
    let cfg = sim.write_file(
        "registry.yml",
        &format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: :5000\n{extra}",
            data.display()
        ),
    );
    let proc = sim.spawn_host(&format!("exec docker-registry serve {}", shq(&cfg.to_string_lossy())));
    poll("the registry to answer on 127.0.0.1:5000", WAIT, || {
        // 200, or 401 with a token challenge when auth is on
        let o = sim.sh(&format!("curl -s -o /dev/null -w '%{{http_code}}' http://{REGISTRY}/v2/"));
        if o.ok() && matches!(o.stdout.trim(), "200" | "401") {
            Ok(())
        } else {
            Err(o.to_string())
        }
    });
    Registry { _proc: proc, data }
}

/// skopeo copies an OCI archive (all of a manifest list, if it is one) to the registry.
fn push(sim: &SimHost, archive: &Path, repo_tag: &str) {
    sim.sh_ok(&format!(
        "skopeo --insecure-policy copy --quiet --all --dest-tls-verify=false oci-archive:{} docker://{REGISTRY}/{repo_tag}",
        shq(&archive.to_string_lossy())
    ));
}

/// Everything under the store (path, kind, size, mode), to prove "nothing changed".
fn store_listing(sim: &SimHost) -> Vec<String> {
    tree_listing(&sim.root.join("images"))
}

fn inspect_image(sim: &SimHost, image: &str) -> Json {
    let out = sim.dockling_ok(&["image", "inspect", image]);
    Json::parse(&out).unwrap_or_else(|e| panic!("image inspect output is not JSON ({e}):\n{out}")).idx(0).clone()
}

/// A failed command: exit 125, one line on stderr containing `needle`, nothing on stdout.
fn assert_refused(o: &Out, needle: &str, what: &str) {
    assert_eq!(o.code(), Some(125), "{what}: must exit 125\n{o}");
    assert_eq!(o.stderr_lines().len(), 1, "{what}: exactly one line on stderr\n{o}");
    assert!(o.stderr.contains(needle), "{what}: stderr must mention {needle:?}\n{o}");
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[test]
fn pull_from_a_registry_run_and_round_trip_save_load() {
    let sim = SimHost::new("img-pull");
    let _reg = start_registry(&sim);

    // One image with a gzip layer and a config; a manifest list whose entry for this
    // machine has a zstd layer and another config (and a decoy for another arch).
    let bb = busybox_layer();
    let mut oci = Oci::default();
    let app = oci.image(
        &[(bb.clone(), Comp::Gzip)],
        json!({ "Cmd": ["sh", "-c", "echo hello from $GREETING in $(pwd)"], "Env": ["GREETING=registry", "PATH=/bin:/usr/bin"],
                "WorkingDir": "/tmp", "ExposedPorts": { "8080/tcp": {} } }),
        None,
    );
    oci.name(&app, Some("v1"));
    oci.write(&sim.tmp.join("app.tar"));
    push(&sim, &sim.tmp.join("app.tar"), "test/app:v1");

    let mut multi = Oci::default();
    let mine =
        multi.image(&[(bb.clone(), Comp::Zstd)], json!({ "Entrypoint": ["echo", "this is"], "Cmd": [arch()] }), None);
    let other = multi.image(&[(bb.clone(), Comp::Gzip)], json!({ "Cmd": ["echo", "WRONG PLATFORM"] }), None);
    let decoy = if arch() == "arm64" { "amd64" } else { "arm64" };
    let list = multi.list(&[(other, decoy), (mine, arch())]);
    multi.name(&list, Some("latest"));
    multi.write(&sim.tmp.join("multi.tar"));
    push(&sim, &sim.tmp.join("multi.tar"), "test/multi:latest");

    // pull by tag
    let o = sim.dockling(&["pull", &format!("{REGISTRY}/test/app:v1")]);
    assert!(o.ok(), "pull failed\n{o}");
    assert_eq!(o.stdout_lines().last().copied(), Some(format!("{REGISTRY}/test/app:v1").as_str()), "{o}");
    assert!(o.stdout.contains("Status: Downloaded newer image"), "{o}");
    let images = sim.dockling_ok(&["images"]);
    assert!(images.contains(&format!("{REGISTRY}/test/app")) && images.contains("v1"), "{images}");
    let again = sim.dockling(&["pull", &format!("{REGISTRY}/test/app:v1")]);
    assert!(again.ok() && again.stdout.contains("Image is up to date"), "{again}");

    // run honours Cmd, Env, WorkingDir; arguments replace Cmd; -e wins over Env
    let image = format!("{REGISTRY}/test/app:v1");
    let o = sim.dockling(&["run", "--rm", "--network", "none", &image]);
    assert_eq!(o.stdout, "hello from registry in /tmp\n", "{o}");
    let o = sim.dockling(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-e",
        "GREETING=flag",
        "-w",
        "/etc",
        &image,
        "sh",
        "-c",
        "echo $GREETING $(pwd) $PATH",
    ]);
    assert_eq!(o.stdout, "flag /etc /bin:/usr/bin\n", "{o}");

    // -P publishes ExposedPorts on a free host port
    let name = sim.cname("ports");
    sim.run_d(&["--name", &name, "-P", &image, "sleep", "1000"]);
    let ports = sim.inspect(&name).path("NetworkSettings.Ports").clone();
    let host_port = ports.get("8080/tcp").idx(0).get("HostPort").as_str().map(String::from);
    assert!(
        host_port.as_deref().is_some_and(|p| p.parse::<u16>().is_ok_and(|n| n > 0)),
        "-P must publish 8080/tcp: {ports:?}"
    );
    sim.dockling_ok(&["rm", "-f", &name]);

    // a registry that is not on the loopback is HTTPS unless --insecure
    let remote = format!("{HOST_IP}:5000/test/app:v1");
    let o = sim.dockling(&["pull", &remote]);
    assert_refused(&o, "https://", "pull from a plain-HTTP registry without --insecure");
    let o = sim.dockling(&["pull", "--insecure", &remote]);
    assert!(o.ok(), "{o}");

    // pull by digest
    let digest = inspect_image(&sim, &image).path("Manifest.Digest").as_str().unwrap().to_string();
    let by_digest = format!("{REGISTRY}/test/app@{digest}");
    let o = sim.dockling(&["pull", &by_digest]);
    assert!(o.ok(), "{o}");
    let o = sim.dockling(&["run", "--rm", "--network", "none", &by_digest, "echo", "pinned"]);
    assert_eq!(o.stdout, "pinned\n", "{o}");

    // run pulls what it does not have: the manifest list's entry for this platform
    let multi_ref = format!("{REGISTRY}/test/multi");
    let o = sim.dockling(&["run", "--rm", "--network", "none", &multi_ref]);
    assert_eq!(o.code(), Some(0), "{o}");
    assert_eq!(o.stdout, format!("this is {}\n", arch()), "{o}");
    assert!(o.stderr.contains("Unable to find image"), "run must say it pulls\n{o}");
    let o = sim.dockling(&["run", "--rm", "--network", "none", "--entrypoint", "echo", &multi_ref, "replaced"]);
    assert_eq!(o.stdout, "replaced\n", "{o}");

    // save, then load into a fresh store: same ids and manifest digests
    let archive = sim.tmp.join("saved.tar");
    sim.dockling_ok(&["save", "-o", &archive.to_string_lossy(), &image, &multi_ref]);
    let before_app = inspect_image(&sim, &image);
    let before_multi = inspect_image(&sim, &multi_ref);
    sim.dockling_ok(&["rmi", &image, &by_digest, &multi_ref, &remote]);
    let o = sim.dockling(&["image", "inspect", &image]);
    assert_eq!(o.code(), Some(1), "rmi must remove it\n{o}");
    sim.dockling_ok(&["image", "prune"]);
    let blobs = fs::read_dir(sim.root.join("images/blobs/sha256")).unwrap().count();
    let layers = fs::read_dir(sim.root.join("images/layers")).unwrap().count();
    assert_eq!((blobs, layers), (0, 0), "prune must leave no blob or layer:\n{}", sim.dockling_ok(&["images"]));
    let o = sim.dockling(&["load", "-i", &archive.to_string_lossy()]);
    assert!(o.ok(), "{o}");
    assert!(o.stdout.contains(&format!("Loaded image: {image}")), "{o}");
    for (name, before) in [(&image, &before_app), (&multi_ref, &before_multi)] {
        let after = inspect_image(&sim, name);
        assert_eq!(after.get("Id").as_str(), before.get("Id").as_str(), "{name}: image id changed by save/load");
        assert_eq!(
            after.path("Manifest.Digest").as_str(),
            before.path("Manifest.Digest").as_str(),
            "{name}: manifest digest changed"
        );
        assert_eq!(after.path("RootFS.Layers"), before.path("RootFS.Layers"), "{name}: layers changed");
    }
    let o = sim.dockling(&["run", "--rm", "--network", "none", &image]);
    assert_eq!(o.stdout, "hello from registry in /tmp\n", "{o}");

    // What save wrote is a docker-archive and an OCI archive to containers/image
    // (the code podman load uses): push both forms and pull them back.
    let one = sim.tmp.join("one.tar");
    sim.dockling_ok(&["save", "-o", &one.to_string_lossy(), &image]);
    for (transport, tag) in [("docker-archive", "from-docker-archive"), ("oci-archive", "from-oci-archive")] {
        sim.sh_ok(&format!(
            "skopeo --insecure-policy copy --quiet --dest-tls-verify=false {transport}:{} docker://{REGISTRY}/test/resaved:{tag}",
            shq(&one.to_string_lossy())
        ));
        let r = format!("{REGISTRY}/test/resaved:{tag}");
        let o = sim.dockling(&["run", "--rm", "--network", "none", &r]);
        assert_eq!(o.stdout, "hello from registry in /tmp\n", "{transport}\n{o}");
    }
    sim.finish();
}

#[test]
fn corrupt_blobs_and_wrong_digests_leave_the_store_as_it_was() {
    let sim = SimHost::new("img-corrupt");
    let reg = start_registry(&sim);
    sim.image("busybox");
    let bb = busybox_layer();

    // A registry blob corrupted on disk (same length, different bytes).
    let mut oci = Oci::default();
    let d = oci.image(&[(bb.clone(), Comp::Gzip)], json!({ "Cmd": ["true"] }), None);
    oci.name(&d, Some("v1"));
    oci.write(&sim.tmp.join("c.tar"));
    push(&sim, &sim.tmp.join("c.tar"), "test/corrupt:v1");
    let layer_hex = sha(&compress(&bb, Comp::Gzip).0);
    let data = reg.data.join(format!("docker/registry/v2/blobs/sha256/{}/{layer_hex}/data", &layer_hex[..2]));
    let mut bytes = fs::read(&data).unwrap_or_else(|e| panic!("registry blob {}: {e}", data.display()));
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    fs::write(&data, &bytes).unwrap();
    let before = store_listing(&sim);
    let o = sim.dockling(&["pull", &format!("{REGISTRY}/test/corrupt:v1")]);
    assert_refused(&o, "digest mismatch", "pull of a corrupt blob");
    assert_eq!(store_listing(&sim), before, "a refused pull must leave the store as it was\n{o}");
    let o = sim.dockling(&["run", "--rm", &format!("{REGISTRY}/test/corrupt:v1"), "true"]);
    assert_refused(&o, "digest mismatch", "run of a corrupt image");
    assert_eq!(store_listing(&sim), before, "a refused run must leave the store as it was\n{o}");

    // An OCI archive whose blob does not match its name.
    let mut oci = Oci::default();
    let d = oci.image(&[(bb.clone(), Comp::None)], json!({}), None);
    oci.name(&d, Some("bad:v1"));
    let victim = sha(&bb);
    let pos = oci.blobs.iter().position(|(h, _)| *h == victim).unwrap();
    let n = oci.blobs[pos].1.len();
    oci.blobs[pos].1[n / 3] ^= 0x01;
    oci.write(&sim.tmp.join("bad-blob.tar"));
    let o = sim.dockling(&["load", "-i", &sim.tmp.join("bad-blob.tar").to_string_lossy()]);
    assert_refused(&o, "digest mismatch", "load of a corrupt blob");
    assert_eq!(store_listing(&sim), before, "{o}");

    // Consistent blobs, but the config's diff id is not the layer's.
    let mut oci = Oci::default();
    let d = oci.image(&[(bb.clone(), Comp::Gzip)], json!({}), Some(vec![format!("sha256:{}", "0".repeat(64))]));
    oci.name(&d, Some("bad:v2"));
    oci.write(&sim.tmp.join("bad-diff.tar"));
    let o = sim.dockling(&["load", "-i", &sim.tmp.join("bad-diff.tar").to_string_lossy()]);
    assert_refused(&o, "diff id", "load with a wrong diff id");
    assert_eq!(store_listing(&sim), before, "{o}");

    // A manifest naming a blob the archive lacks; an archive that is not one.
    // (gzip: the plain busybox layer is in the store already, and would be used)
    let mut oci = Oci::default();
    let d = oci.image(&[(bb.clone(), Comp::Gzip)], json!({}), None);
    oci.name(&d, Some("bad:v3"));
    let gz = sha(&compress(&bb, Comp::Gzip).0);
    oci.blobs.retain(|(h, _)| *h != gz);
    oci.write(&sim.tmp.join("missing.tar"));
    let o = sim.dockling(&["load", "-i", &sim.tmp.join("missing.tar").to_string_lossy()]);
    assert_refused(&o, "missing", "load with a missing blob");
    let junk = sim.write_file("junk.tar", "this is not a tar file at all, not even close......");
    let o = sim.dockling(&["load", "-i", &junk.to_string_lossy()]);
    assert_eq!(o.code(), Some(125), "{o}");
    assert_eq!(store_listing(&sim), before, "{o}");

    // The store still works.
    let o = sim.dockling(&["run", "--rm", "--network", "none", "busybox", "echo", "fine"]);
    assert_eq!(o.stdout, "fine\n", "{o}");
    sim.finish();
}

#[test]
fn layers_unpack_whiteouts_links_devices_and_metadata() {
    use tar::EntryType::*;
    let sim = SimHost::new("img-layers");
    let base = busybox_layer();
    let mut l2 = vec![
        dir("data/"),
        file("data/keep", "kept\n"),
        file("data/gone", "to be deleted\n"),
        dir("data/dir/"),
        file("data/dir/x", "x\n"),
        file("data/dir/y", "y\n"),
        dir("opq/"),
        file("opq/old1", "old\n"),
        dir("opq/sub/"),
        file("opq/sub/old2", "old\n"),
        link("data/hl", Link, "data/keep"),
        link("data/sl", Symlink, "keep"),
        link("data/abs", Symlink, "/etc/passwd"),
        E { dev: (1, 3), mode: 0o666, ..e("data/null", Char) },
        E { mode: 0o600, ..e("data/fifo", Fifo) },
        E { uid: 1234, gid: 5678, mode: 0o4750, mtime: 1_234_567_890, ..file("data/owned", "mine\n") },
        E { mode: 0o700, mtime: 1_111_111_111, uid: 42, ..dir("data/private/") },
        file("data/private/inside", "secret\n"),
    ];
    l2.push(file("top", "layer two\n"));
    let l3 = vec![
        file("data/.wh.gone", ""),
        file("data/dir/.wh.x", ""),
        dir("opq/"),
        file("opq/.wh..wh..opq", ""),
        file("opq/new", "new\n"),
        file(".wh.top", ""),
        file("data/later", "layer three\n"),
    ];
    let mut oci = Oci::default();
    let d = oci.image(&[(base, Comp::None), (tar_of(&l2), Comp::Gzip), (tar_of(&l3), Comp::Zstd)], json!({}), None);
    oci.name(&d, Some("layered:v1"));
    oci.write(&sim.tmp.join("layered.tar"));
    let o = sim.dockling(&["load", "-i", &sim.tmp.join("layered.tar").to_string_lossy()]);
    assert!(o.ok(), "{o}");
    assert_eq!(o.stdout.trim(), "Loaded image: layered:v1", "{o}");

    let script = "cd /data && ls -A /data | tr '\\n' ' ' && echo && ls -A /data/dir | tr '\\n' ' ' && echo && \
        ls -A /opq | tr '\\n' ' ' && echo && \
        stat -c '%n %F %u %g %a %Y %h' keep hl owned private && stat -c '%n %F %t %T %a' null fifo && \
        readlink sl && readlink abs && cat hl sl later && ls /top 2>&1; true";
    let o = sim.dockling(&["run", "--rm", "--network", "none", "layered:v1", "sh", "-c", script]);
    assert!(o.ok(), "{o}");
    let lines = o.stdout_lines();
    let expect = [
        "abs dir fifo hl keep later null owned private sl ",
        "y ",
        "new ",
        "keep regular file 0 0 644 1600000000 2",
        "hl regular file 0 0 644 1600000000 2",
        "owned regular file 1234 5678 4750 1234567890 1",
        "private directory 42 0 700 1111111111 2",
        "null character special file 1 3 666",
        "fifo fifo 0 0 600",
        "keep",
        "/etc/passwd",
        "kept",
        "kept",
        "layer three",
    ];
    for (i, want) in expect.iter().enumerate() {
        assert_eq!(lines.get(i).copied(), Some(*want), "line {i} of the container's view\n{o}");
    }
    assert!(o.stdout.contains("No such file"), "the whiteout of /top must hide it\n{o}");

    // The layer dirs hold overlay's own whiteouts (0/0 char devices), shared by images.
    let layers = sim.root.join("images/layers");
    let mut whiteouts = 0;
    for l in fs::read_dir(&layers).unwrap().flatten() {
        if let Ok(m) = fs::symlink_metadata(l.path().join("diff/data/gone")) {
            use std::os::unix::fs::{FileTypeExt, MetadataExt};
            if m.file_type().is_char_device() {
                assert_eq!(m.rdev(), 0, "a whiteout is a 0/0 char device");
                whiteouts += 1;
            }
        }
    }
    assert_eq!(whiteouts, 1);
    sim.finish();
}

#[test]
fn hostile_layers_are_refused() {
    use tar::EntryType::*;
    let sim = SimHost::new("img-hostile");
    sim.image("busybox");
    let before = store_listing(&sim);
    let cases: Vec<(&str, Vec<E>)> = vec![
        ("dotdot", vec![file("../evil", "x")]),
        ("deep dotdot", vec![dir("a/"), file("a/../../evil", "x")]),
        ("hard link out", vec![link("hl", Link, "../../../../etc/passwd")]),
        ("relative symlink out", vec![link("sl", Symlink, "../../../../../../etc")]),
        ("write through symlink", vec![link("etc", Symlink, "/etc"), file("etc/evil", "x")]),
        ("hard link through symlink", vec![link("d", Symlink, "/etc"), link("hl", Link, "d/passwd")]),
    ];
    for (what, entries) in cases {
        let mut oci = Oci::default();
        let d = oci.image(&[(tar_of(&entries), Comp::Gzip)], json!({}), None);
        oci.name(&d, Some("hostile:v1"));
        let path = sim.tmp.join("hostile.tar");
        oci.write(&path);
        let o = sim.dockling(&["load", "-i", &path.to_string_lossy()]);
        assert_refused(&o, "refusing", what);
        assert_eq!(store_listing(&sim), before, "{what}: the store changed\n{o}");
    }
    // nothing escaped anywhere near the store
    for p in
        [sim.tmp.join("evil"), sim.root.join("evil"), sim.root.join("images/evil"), sim.root.join("images/tmp/evil")]
    {
        assert!(!p.exists(), "{} was created", p.display());
    }
    assert!(!Path::new("/etc/evil").exists());
    sim.finish();
}

#[test]
fn import_config_rmi_prune_and_legacy_docker_save() {
    let sim = SimHost::new("img-rmi");
    let src = image_dir("busybox");
    // import with --change: the config run honours
    let o = sim.dockling(&[
        "import",
        "-c",
        "ENTRYPOINT [\"/bin/sh\", \"-c\"]",
        "-c",
        "CMD [\"echo default $MSG as $(id -u)\"]",
        "-c",
        "ENV MSG=imported",
        "-c",
        "USER 4242",
        "-c",
        "EXPOSE 9000/udp",
        &src.to_string_lossy(),
        "conf:v1",
    ]);
    assert!(o.ok(), "{o}");
    let id = o.stdout.trim().strip_prefix("sha256:").unwrap_or_default().to_string();
    assert_eq!(id.len(), 64, "import prints the image id\n{o}");
    let o = sim.dockling(&["run", "--rm", "--network", "none", "conf:v1"]);
    assert_eq!(o.stdout, "default imported as 4242\n", "{o}");
    let o =
        sim.dockling(&["run", "--rm", "--network", "none", "--user", "0", "conf:v1", "echo override $MSG as $(id -u)"]);
    assert_eq!(o.stdout, "override imported as 0\n", "{o}");
    let o = sim.dockling(&["import", "-c", "FROM scratch", &src.to_string_lossy(), "x"]);
    assert_eq!(o.code(), Some(125), "{o}");
    let o = sim.dockling(&["run", "--rm", "--pull", "never", "not-here", "true"]);
    assert_refused(&o, "Unable to find image", "--pull never");

    // a second name for the same image; rmi of one name only untags
    let c = sim.cname("user");
    let o = sim.dockling(&["run", "--name", &c, "--network", "none", "conf:v1"]);
    assert!(o.ok(), "{o}");
    let o = sim.dockling(&["rmi", "conf:v1"]);
    assert_eq!(o.code(), Some(1), "rmi of an image a container uses must be refused\n{o}");
    assert!(o.stderr.contains("conflict"), "{o}");
    let o = sim.dockling(&["rmi", "-f", "conf:v1"]);
    assert!(o.ok() && o.stdout.contains("Untagged: conf:v1"), "{o}");
    assert!(!sim.dockling_ok(&["images"]).contains("conf"), "the name must be gone");
    // still there, unnamed, while the container exists; prune then removes it
    sim.dockling_ok(&["image", "prune"]);
    assert!(sim.dockling_ok(&["images", "-q", "--no-trunc"]).contains(&id), "image pruned while a container uses it");
    sim.dockling_ok(&["rm", &c]);
    let o = sim.dockling_ok(&["image", "prune"]);
    assert!(o.contains(&id), "{o}");
    assert!(!sim.dockling_ok(&["images", "-q", "--no-trunc"]).contains(&id));
    let o = sim.dockling(&["rmi", "no-such-image"]);
    assert_eq!(o.code(), Some(1), "{o}");

    // A legacy `docker save` tarball: <id>/layer.tar (one a symlink), <hex>.json config.
    let layer = busybox_layer();
    let extra = tar_of(&[file("hello.txt", "from a legacy archive\n")]);
    let diff = |t: &[u8]| format!("sha256:{}", sha(t));
    let config = serde_json::to_vec(&json!({
        "architecture": arch(), "os": "linux", "config": { "Cmd": ["cat", "/hello.txt"] },
        "rootfs": { "type": "layers", "diff_ids": [diff(&layer), diff(&extra), diff(&extra)] },
    }))
    .unwrap();
    let chex = sha(&config);
    let path = sim.tmp.join("legacy.tar");
    let manifest = json!([{ "Config": format!("{chex}.json"), "RepoTags": ["legacy:v1"],
                            "Layers": ["aaa/layer.tar", "bbb/layer.tar", "ccc/layer.tar"] }]);
    let files = vec![
        ("aaa/layer.tar".to_string(), layer),
        ("bbb/layer.tar".to_string(), extra),
        (format!("{chex}.json"), config),
        ("manifest.json".to_string(), serde_json::to_vec(&manifest).unwrap()),
    ];
    write_tar(&path, &files, &[("ccc/layer.tar", "../bbb/layer.tar")]);
    let o = sim.dockling(&["load", "-i", &path.to_string_lossy()]);
    assert!(o.ok(), "{o}");
    assert_eq!(o.stdout.trim(), "Loaded image: legacy:v1", "{o}");
    assert_eq!(inspect_image(&sim, "legacy:v1").get("Id").as_str(), Some(format!("sha256:{chex}").as_str()));
    let o = sim.dockling(&["run", "--rm", "--network", "none", "legacy:v1"]);
    assert_eq!(o.stdout, "from a legacy archive\n", "{o}");
    sim.finish();
}

#[test]
fn interrupted_downloads_resume() {
    let sim = SimHost::new("img-resume");
    let reg = start_registry(&sim);
    let bb = busybox_layer();
    let mut oci = Oci::default();
    let d = oci.image(&[(bb.clone(), Comp::Gzip)], json!({ "Cmd": ["echo", "resumed"] }), None);
    oci.name(&d, Some("v1"));
    oci.write(&sim.tmp.join("r.tar"));
    push(&sim, &sim.tmp.join("r.tar"), "test/resume:v1");
    let gz = compress(&bb, Comp::Gzip).0;
    let hex = sha(&gz);
    let stored = reg.data.join(format!("docker/registry/v2/blobs/sha256/{}/{hex}/data", &hex[..2]));
    assert!(stored.exists(), "skopeo must keep the gzip layer as it is");
    let image = format!("{REGISTRY}/test/resume:v1");
    // First pull creates the store; remove the image so the blob must come again.
    sim.dockling_ok(&["pull", &image]);
    sim.dockling_ok(&["rmi", &image]);
    sim.dockling_ok(&["image", "prune"]);
    for (what, prefix) in
        [("a good first half", gz[..gz.len() / 2].to_vec()), ("a bad first half", vec![0u8; gz.len() / 2])]
    {
        let partial = sim.root.join(format!("images/tmp/{hex}.partial"));
        fs::write(&partial, &prefix).unwrap();
        let o = sim.dockling(&["run", "--rm", "--network", "none", &image]);
        assert_eq!(o.stdout, "resumed\n", "{what}\n{o}");
        assert!(!partial.exists(), "{what}: the partial download must be used up");
        sim.dockling_ok(&["rmi", &image]);
        sim.dockling_ok(&["image", "prune"]);
    }
    sim.finish();
}

/// A token server for docker-registry's bearer-token auth: it signs (with openssl) a JWT
/// granting whatever scope is asked, except for repositories named `*/denied`, and logs
/// each request's user agent and scopes.
const TOKEN_SERVER_PY: &str = r#"
import base64, json, os, subprocess, sys, time, urllib.parse
from http.server import BaseHTTPRequestHandler, HTTPServer

port, key, cert, log = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
der = subprocess.run(["openssl", "x509", "-in", cert, "-outform", "DER"], capture_output=True, check=True).stdout

def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

class H(BaseHTTPRequestHandler):
    def do_GET(self):
        q = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
        access = []
        for scope in q.get("scope", []):
            kind, name, actions = scope.split(":")
            if not name.endswith("/denied"):
                access.append({"type": kind, "name": name, "actions": actions.split(",")})
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(der).decode()]}
        claims = {"iss": "dockling-test-issuer", "sub": "", "aud": q.get("service", [""])[0],
                  "exp": now + 300, "nbf": now - 10, "iat": now, "jti": os.urandom(8).hex(), "access": access}
        signing = (b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())).encode()
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key], input=signing, capture_output=True, check=True).stdout
        token = signing.decode() + "." + b64(sig)
        with open(log, "a") as f:
            f.write(self.headers.get("User-Agent", "") + " " + " ".join(q.get("scope", [])) + "\n")
        body = json.dumps({"token": token, "access_token": token, "expires_in": 300}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

HTTPServer(("127.0.0.1", port), H).serve_forever()
"#;

#[test]
fn pull_with_bearer_token_auth() {
    let sim = SimHost::new("img-token");
    let dir = sim.tmp.clone();
    let (key, cert, log) = (dir.join("key.pem"), dir.join("cert.pem"), dir.join("tokens.log"));
    sim.sh_ok(&format!(
        "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=dockling-test-token -keyout {} -out {} 2>&1",
        shq(&key.to_string_lossy()),
        shq(&cert.to_string_lossy())
    ));
    let script = sim.write_file("token.py", TOKEN_SERVER_PY);
    let _tokens = sim.spawn_host(&format!(
        "exec {} {} 5001 {} {} {}",
        python(),
        shq(&script.to_string_lossy()),
        shq(&key.to_string_lossy()),
        shq(&cert.to_string_lossy()),
        shq(&log.to_string_lossy())
    ));
    let auth = format!(
        "auth:\n  token:\n    realm: http://127.0.0.1:5001/token\n    service: dockling-test\n    issuer: dockling-test-issuer\n    rootcertbundle: {}\n",
        cert.display()
    );
    let _reg = start_registry_with(&sim, &auth);
    poll("the token server", WAIT, || {
        let o = sim.sh("curl -sf 'http://127.0.0.1:5001/token?service=dockling-test'");
        if o.ok() {
            Ok(())
        } else {
            Err(o.to_string())
        }
    });
    let mut oci = Oci::default();
    let d = oci.image(&[(busybox_layer(), Comp::Gzip)], json!({ "Cmd": ["echo", "authorised"] }), None);
    oci.name(&d, Some("v1"));
    oci.write(&dir.join("t.tar"));
    push(&sim, &dir.join("t.tar"), "test/app:v1");

    // Anonymous pull: the registry's 401 challenge sends dockling to the token server.
    let o = sim.dockling(&["run", "--rm", "--network", "none", &format!("{REGISTRY}/test/app:v1")]);
    assert_eq!(o.stdout, "authorised\n", "{o}");
    let tokens = fs::read_to_string(&log).unwrap_or_default();
    assert!(
        tokens.lines().any(|l| l.starts_with("dockling/") && l.contains("repository:test/app:pull")),
        "dockling must ask the token server for a pull token:\n{tokens}"
    );
    // A token without the access asked for: refused, with one line, nothing stored.
    let before = store_listing(&sim);
    let o = sim.dockling(&["pull", &format!("{REGISTRY}/test/denied:v1")]);
    assert_refused(&o, "ot authorized", "pull without access");
    assert_eq!(store_listing(&sim), before, "{o}");
    sim.finish();
}

#[test]
fn an_image_with_many_layers_runs() {
    // With full paths, overlay's mount options (one page) would hold ~30 lower dirs
    // under a test root; the short names hold more.
    let sim = SimHost::new("img-many");
    let names: Vec<String> = (0..45).map(|i| format!("layers/{i:02}")).collect();
    let mut layers = vec![(busybox_layer(), Comp::None)];
    for n in &names {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_ustar();
        h.set_size(n.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, n, n.as_bytes()).unwrap();
        layers.push((b.into_inner().unwrap(), Comp::Gzip));
    }
    let mut oci = Oci::default();
    let d = oci.image(&layers, json!({ "Cmd": ["sh", "-c", "ls /layers | wc -l"] }), None);
    oci.name(&d, Some("many:v1"));
    oci.write(&sim.tmp.join("many.tar"));
    sim.dockling_ok(&["load", "-i", &sim.tmp.join("many.tar").to_string_lossy()]);
    let o = sim.dockling(&["run", "--rm", "--network", "none", "many:v1"]);
    assert_eq!(o.stdout.trim(), "45", "{o}");
    // and pulled: 46 layers, downloaded three at a time
    let _reg = start_registry(&sim);
    push(&sim, &sim.tmp.join("many.tar"), "test/many:v1");
    let image = format!("{REGISTRY}/test/many:v1");
    let o = sim.dockling(&["pull", &image]);
    assert!(o.ok(), "{o}");
    assert_eq!(o.stdout.matches("Pull complete").count() + o.stdout.matches("Already exists").count(), 46, "{o}");
    let o = sim.dockling(&["run", "--rm", "--network", "none", &image]);
    assert_eq!(o.stdout.trim(), "45", "{o}");
    sim.finish();
}
