//! `-v HOST:CONTAINER[:ro]` bind mounts and `--tmpfs PATH[:OPTIONS]`, as Docker has them.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::error;
use crate::types::{Mount, TmpfsOptions};

/// Checks the flags before anything is created: absolute paths, existing sources.
pub fn parse(volumes: &[String], tmpfs: &[String]) -> Result<Vec<Mount>> {
    let mut out = Vec::new();
    for v in volumes {
        let parts: Vec<&str> = v.split(':').collect();
        let (source, target, mode) = match parts.as_slice() {
            [s, t] => (*s, *t, ""),
            [s, t, m] => (*s, *t, *m),
            _ => {
                return Err(error::user(format!(
                    "invalid volume specification: {v:?} (use HOST_PATH:CONTAINER_PATH[:ro])"
                )))
            }
        };
        if !source.starts_with('/') {
            return Err(error::user(format!(
                "invalid volume {v:?}: the host path {source:?} must be absolute (named volumes are not supported)"
            )));
        }
        if !Path::new(source).exists() {
            return Err(error::user(format!("invalid volume {v:?}: host path {source:?} does not exist")));
        }
        check_target(target, v)?;
        let read_only = match mode {
            "" | "rw" => false,
            "ro" => true,
            m => return Err(error::user(format!("invalid volume {v:?}: unknown mode {m:?} (use ro or rw)"))),
        };
        out.push(Mount::Bind { source: PathBuf::from(source), target: target.to_string(), read_only });
    }
    for t in tmpfs {
        let (target, opts) = t.split_once(':').unwrap_or((t, ""));
        check_target(target, t)?;
        let options = parse_tmpfs_options(opts).map_err(|e| error::user(format!("invalid tmpfs {t:?}: {e}")))?;
        out.push(Mount::Tmpfs { target: target.to_string(), options });
    }
    Ok(out)
}

/// Docker's `--tmpfs` options: `size=`, `mode=`, `exec`/`noexec`, `suid`/`nosuid`,
/// `dev`/`nodev`, `ro`/`rw`; the last of two that disagree wins, as with mount(8).
fn parse_tmpfs_options(spec: &str) -> std::result::Result<TmpfsOptions, String> {
    let mut o = TmpfsOptions::default();
    for opt in spec.split(',').filter(|s| !s.is_empty()) {
        match opt.split_once('=') {
            None => match opt {
                "ro" => o.read_only = true,
                "rw" => o.read_only = false,
                "exec" => o.exec = true,
                "noexec" => o.exec = false,
                "suid" => o.suid = true,
                "nosuid" => o.suid = false,
                "dev" => o.dev = true,
                "nodev" => o.dev = false,
                _ => return Err(format!("unknown option {opt:?}")),
            },
            Some(("size", v)) => o.size = Some(parse_size(v).ok_or_else(|| format!("invalid size {v:?}"))?),
            Some(("mode", v)) => {
                o.mode = Some(
                    u32::from_str_radix(v, 8)
                        .ok()
                        .filter(|m| *m <= 0o7777)
                        .ok_or_else(|| format!("invalid mode {v:?} (octal, e.g. 1777)"))?,
                )
            }
            Some(_) => return Err(format!("unknown option {opt:?}")),
        }
    }
    Ok(o)
}

/// `64m`, `1g`, `512k`, `4096` (bytes); a trailing `b` is allowed (`64mb`).
fn parse_size(v: &str) -> Option<u64> {
    let lower = v.to_ascii_lowercase();
    let s = lower.strip_suffix('b').unwrap_or(&lower);
    let (digits, unit) = match s.char_indices().last()? {
        (i, 'k') => (&s[..i], 1u64 << 10),
        (i, 'm') => (&s[..i], 1 << 20),
        (i, 'g') => (&s[..i], 1 << 30),
        _ => (s, 1),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u64>().ok()?.checked_mul(unit).filter(|n| *n > 0)
}

fn check_target(target: &str, spec: &str) -> Result<()> {
    // `//`, `/.` and `/./` name the root too: only real components count.
    let names_root = target.split('/').all(|c| c.is_empty() || c == ".");
    if !target.starts_with('/') || names_root || target.split('/').any(|c| c == "..") {
        return Err(error::user(format!(
            "invalid mount {spec:?}: the container path {target:?} must be absolute, not / and without '..'"
        )));
    }
    Ok(())
}

/// The mounts as the runtime spec writes them, as Docker's engine does: a volume is an
/// `rbind` (plus `ro`) with `rprivate` propagation; a tmpfs has its flags and data.
pub fn to_spec(mounts: &[Mount]) -> Vec<oci_spec::runtime::Mount> {
    mounts
        .iter()
        .map(|m| {
            let mut s = oci_spec::runtime::Mount::default();
            match m {
                Mount::Bind { source, target, read_only } => {
                    s.set_destination(PathBuf::from(target));
                    s.set_typ(Some("bind".into()));
                    s.set_source(Some(source.clone()));
                    let mut o = vec!["rbind".to_string()];
                    if *read_only {
                        o.push("ro".into());
                    }
                    o.push("rprivate".into());
                    s.set_options(Some(o));
                }
                Mount::Tmpfs { target, options } => {
                    s.set_destination(PathBuf::from(target));
                    s.set_typ(Some("tmpfs".into()));
                    s.set_source(Some(PathBuf::from("tmpfs")));
                    s.set_options(Some(options.mount_options().split(',').map(str::to_string).collect()));
                }
            }
            s
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    /// An existing absolute host path to bind.
    fn existing() -> String {
        let dir = std::env::temp_dir();
        assert!(dir.is_absolute() && dir.is_dir());
        dir.to_str().unwrap().trim_end_matches('/').to_string()
    }

    fn bind(m: &Mount) -> (&Path, &str, bool) {
        match m {
            Mount::Bind { source, target, read_only } => (source.as_path(), target.as_str(), *read_only),
            Mount::Tmpfs { target, .. } => panic!("tmpfs {target}, not a bind"),
        }
    }

    fn err(volumes: &[String], tmpfs: &[&str]) -> String {
        let e = parse(volumes, &strings(tmpfs)).unwrap_err();
        assert_eq!(error::code_of(&e), error::RUNTIME_ERROR);
        e.to_string()
    }

    #[test]
    fn volume_forms_and_modes() {
        let src = existing();
        let vols = [format!("{src}:/data"), format!("{src}:/ro:ro"), format!("{src}:/rw:rw"), format!("{src}:/a/b/c")];
        let mounts = parse(&vols, &[]).unwrap();
        assert_eq!(mounts.len(), 4);
        assert_eq!(bind(&mounts[0]), (Path::new(&src), "/data", false));
        assert_eq!(bind(&mounts[1]), (Path::new(&src), "/ro", true));
        assert_eq!(bind(&mounts[2]), (Path::new(&src), "/rw", false));
        assert_eq!(bind(&mounts[3]), (Path::new(&src), "/a/b/c", false));
        assert!(parse(&[], &[]).unwrap().is_empty());
    }

    #[test]
    fn tmpfs_targets() {
        let mounts = parse(&[], &strings(&["/run", "/tmp:size=64m,mode=1777"])).unwrap();
        let targets: Vec<&str> = mounts
            .iter()
            .map(|m| match m {
                Mount::Tmpfs { target, .. } => target.as_str(),
                Mount::Bind { .. } => panic!("a bind"),
            })
            .collect();
        assert_eq!(targets, ["/run", "/tmp"]);
        // Volumes come first, then tmpfs, whatever the order on the command line.
        let mounts = parse(&[format!("{}:/v", existing())], &strings(&["/t"])).unwrap();
        assert!(matches!((&mounts[0], &mounts[1]), (Mount::Bind { .. }, Mount::Tmpfs { .. })));
    }

    fn tmpfs_options(spec: &str) -> TmpfsOptions {
        match parse(&[], &strings(&[spec])).unwrap().remove(0) {
            Mount::Tmpfs { options, .. } => options,
            Mount::Bind { .. } => panic!("a bind"),
        }
    }

    #[test]
    fn tmpfs_defaults_are_dockers_and_options_override_them() {
        let d = tmpfs_options("/run");
        assert_eq!(d, TmpfsOptions::default());
        assert_eq!(d.mount_options(), "rw,noexec,nosuid,nodev,mode=1777");
        let o = tmpfs_options("/run:rw,size=64m,exec,mode=1777");
        assert!(o.exec && !o.suid && !o.dev && !o.read_only);
        assert_eq!(o.size, Some(64 << 20));
        assert_eq!(o.mount_options(), "rw,exec,nosuid,nodev,size=67108864,mode=1777");
        let o = tmpfs_options("/x:ro,suid,dev,size=512k,mode=700,noexec");
        assert_eq!(o.mount_options(), "ro,noexec,suid,dev,size=524288,mode=700");
        assert_eq!(tmpfs_options("/x:size=1g").size, Some(1 << 30));
        assert_eq!(tmpfs_options("/x:size=4096").size, Some(4096));
        assert_eq!(tmpfs_options("/x:size=2MB").size, Some(2 << 20));
        assert!(!tmpfs_options("/x:exec,noexec").exec);
    }

    #[test]
    fn bad_tmpfs_options_are_refused() {
        for (spec, why) in [
            ("/x:bogus", "unknown option \"bogus\""),
            ("/x:uid=0", "unknown option \"uid=0\""),
            ("/x:size=", "invalid size \"\""),
            ("/x:size=12q", "invalid size \"12q\""),
            ("/x:size=-1", "invalid size \"-1\""),
            ("/x:size=0", "invalid size \"0\""),
            ("/x:mode=999", "invalid mode \"999\" (octal, e.g. 1777)"),
            ("/x:mode=17777", "invalid mode \"17777\" (octal, e.g. 1777)"),
        ] {
            assert_eq!(err(&[], &[spec]), format!("invalid tmpfs {spec:?}: {why}"), "{spec}");
        }
    }

    #[test]
    fn bad_volume_specifications() {
        let src = existing();
        for v in ["/only-one-part".to_string(), format!("{src}:/a:ro:extra"), String::new()] {
            assert!(err(std::slice::from_ref(&v), &[]).starts_with("invalid volume specification"), "{v}");
        }
        assert!(err(&[format!("{src}:/a:z")], &[]).contains("unknown mode \"z\""));
        assert!(err(&[format!("{src}:/a:RO")], &[]).contains("unknown mode \"RO\""));
    }

    #[test]
    fn relative_or_missing_sources_are_refused() {
        for source in ["data", "./data", "../data", "~/data", ""] {
            let e = err(&[format!("{source}:/data")], &[]);
            assert!(e.contains("must be absolute (named volumes are not supported)"), "{source}: {e}");
        }
        let missing = format!("{}/dockling-test-surely-missing-{}", existing(), std::process::id());
        let e = err(&[format!("{missing}:/data")], &[]);
        assert_eq!(e, format!("invalid volume \"{missing}:/data\": host path \"{missing}\" does not exist"));
    }

    #[test]
    fn container_paths_must_be_absolute_not_root_and_without_dotdot() {
        let src = existing();
        for target in ["data", "", "/", "//", "/.", "/./", "..", "/..", "/a/..", "/a/../b", "../etc", "/a/../../etc"] {
            let spec = format!("{src}:{target}");
            let e = err(std::slice::from_ref(&spec), &[]);
            assert_eq!(
                e,
                format!(
                    "invalid mount {spec:?}: the container path {target:?} must be absolute, not / and without '..'"
                )
            );
            assert!(err(&[], &[target]).starts_with("invalid mount"), "tmpfs {target}");
        }
        // Dots inside a name are not '..'.
        for target in ["/a..b", "/..a", "/a/b..", "/.hidden"] {
            assert!(parse(&[format!("{src}:{target}")], &strings(&[target])).is_ok(), "{target}");
        }
        // One bad entry fails the whole list.
        assert!(parse(&[format!("{src}:/ok"), format!("{src}:rel")], &[]).is_err());
        assert!(parse(&[format!("{src}:/ok")], &strings(&["/ok", "/"])).is_err());
    }

    #[test]
    fn volumes_and_tmpfs_become_dockers_spec_mounts() {
        let src = existing();
        let mounts = parse(&[format!("{src}:/data:ro")], &strings(&["/t:size=64m"])).unwrap();
        let spec = to_spec(&mounts);
        let bind = crate::engine::mount::plan(&spec[0]).unwrap();
        assert_eq!(
            bind.commands(),
            [
                format!("mount --rbind {src} /data"),
                "mount -o remount,bind,ro /data".to_string(),
                "mount --make-rprivate /data".to_string()
            ]
        );
        let tmpfs = crate::engine::mount::plan(&spec[1]).unwrap();
        assert_eq!(tmpfs.commands(), ["mount -t tmpfs -o rw,noexec,nosuid,nodev,size=67108864,mode=1777 tmpfs /t"]);
        assert_eq!(tmpfs.data.as_deref(), Some("size=67108864,mode=1777"));
    }
}
