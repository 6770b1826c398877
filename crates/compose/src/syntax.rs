//! The short syntaxes compose borrows from the docker CLI's flags, read as the docker CLI reads
//! them: ports as `nat.ParsePortSpec` (`[IP:][PUBLISHED:]TARGET[/PROTOCOL]`), mounts as its
//! `volumespec.Parse` (`[SOURCE:]TARGET[:OPTIONS]`), and `restart:` as `opts.ParseRestartPolicy`.

use std::net::IpAddr;

use crate::model::{BindOptions, MountType, Port, Protocol, PublishMode, RestartCondition};
use crate::model::{ServiceVolume, VolumeOptions};

/// A port number as Go's `strconv.ParseInt(s, 10, 0)` reads it, from 0 to 65535.
pub(crate) fn parse_port_number(text: &str) -> Result<u32, String> {
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{text:?} is not a number"));
    }
    match text.parse::<i64>() {
        Ok(port) if (0..=65535).contains(&port) => Ok(port as u32),
        _ => Err(format!("{text:?} is out of range (0 to 65535)")),
    }
}

/// `START-END` or a single port, as an inclusive range.
fn parse_port_range(text: &str) -> Result<(u32, u32), String> {
    let (start, end) = match text.split_once('-') {
        Some((start, end)) if start != end => (start, Some(end)),
        Some((start, _)) => (start, None),
        None => (text, None),
    };
    let start = parse_port_number(start)?;
    let Some(end) = end else {
        return Ok((start, start));
    };
    let end = parse_port_number(end)?;
    if end < start {
        return Err(format!("the range {text:?} ends before it starts"));
    }
    Ok((start, end))
}

/// The ports one short-syntax item stands for, and the host address it names, which Swarm
/// ignores.
pub(crate) struct ShortPorts {
    pub(crate) ports: Vec<Port>,
    pub(crate) ignored_ip: Option<String>,
}

/// `[IP:][PUBLISHED:]TARGET[/PROTOCOL]`, where ports may be ranges `START-END`. A target range
/// maps onto a published range of the same size; one target with a published range publishes
/// it on each port of the range. The ports come out in the docker CLI's order: by
/// `TARGET/PROTOCOL` as text.
pub(crate) fn parse_ports(text: &str) -> Result<ShortPorts, String> {
    let invalid = |why: String| format!("invalid port {text:?}: {why}");
    let parts: Vec<&str> = text.split(':').collect();
    let (ip, published, target) = match parts.as_slice() {
        [target] => (String::new(), "", *target),
        [published, target] => (String::new(), *published, *target),
        [ip, published, target] => (ip.to_string(), *published, *target),
        [ip @ .., published, target] => (ip.join(":"), *published, *target),
        [] => unreachable!("split yields at least one part"),
    };
    let (target, protocol) = match target.split('/').collect::<Vec<_>>().as_slice() {
        [port] => (*port, "tcp".to_string()),
        [port, "", ..] => (*port, "tcp".to_string()),
        [port, protocol, ..] => (*port, protocol.to_lowercase()),
        [] => unreachable!("split yields at least one part"),
    };
    if target.is_empty() {
        return Err(invalid("no target port".to_string()));
    }
    let protocol = match protocol.as_str() {
        "tcp" => Protocol::Tcp,
        "udp" => Protocol::Udp,
        "sctp" => Protocol::Sctp,
        other => {
            return Err(invalid(format!(
                "unknown protocol {other:?}, expected `tcp`, `udp` or `sctp`"
            )))
        }
    };
    let ip = match ip.strip_prefix('[').and_then(|ip| ip.strip_suffix(']')) {
        Some(inner) => inner.to_string(),
        None => ip,
    };
    if !ip.is_empty() && ip.parse::<IpAddr>().is_err() {
        return Err(invalid(format!("{ip:?} is not an IP address")));
    }
    let (target_start, target_end) =
        parse_port_range(target).map_err(|e| invalid(format!("target port {e}")))?;
    let published = if published.is_empty() {
        None
    } else {
        Some(parse_port_range(published).map_err(|e| invalid(format!("published port {e}")))?)
    };
    if let Some((start, end)) = published {
        if end - start != target_end - target_start && target_start != target_end {
            return Err(invalid(
                "the published range and the target range differ in size".to_string(),
            ));
        }
    }
    let mut targets: Vec<u32> = (target_start..=target_end).collect();
    // The docker CLI sorts the ports of one item by their `PORT/PROTOCOL` text.
    targets.sort_by_key(|port| port.to_string());
    let mut ports = Vec::new();
    for target in targets {
        let offset = target - target_start;
        let published: Vec<Option<u32>> = match published {
            None => vec![None],
            Some((start, end)) if target_start == target_end => (start..=end).map(Some).collect(),
            Some((start, _)) => vec![Some(start + offset)],
        };
        ports.extend(published.into_iter().map(|published| Port {
            target,
            published: published.filter(|p| *p != 0),
            protocol: Some(protocol),
            mode: Some(PublishMode::Ingress),
        }));
    }
    let unspecified = ip.parse::<IpAddr>().is_ok_and(|ip| ip.is_unspecified());
    Ok(ShortPorts {
        ports,
        ignored_ip: (!ip.is_empty() && !unspecified).then_some(ip),
    })
}

/// The mount propagations the Engine knows.
const PROPAGATIONS: [&str; 6] = [
    "rprivate", "private", "rshared", "shared", "rslave", "slave",
];

/// The short syntax's options Swarm has no use for: SELinux relabels, then consistencies
/// (Docker Desktop's, for bind mounts on macOS).
const IGNORED_OPTIONS: [&str; 5] = ["z", "Z", "cached", "delegated", "consistent"];

/// `[SOURCE:]TARGET[:OPTIONS]` as `volumespec.Parse` reads it: a Windows drive letter (`C:`)
/// stays in its part; a source that is a path (`.`, `/`, `~`, `\\` or a drive first) is a bind
/// mount, any other source names a volume, and no source is an anonymous volume. Options are
/// `ro`, `rw`, `nocopy` and a propagation, separated by commas. The compose spec's SELinux
/// relabels (`z`, `Z`) and consistencies (`cached`, …) mean nothing to Swarm and are ignored,
/// as the docker CLI ignores them; unlike the CLI, any other option is refused (tryout 8
/// finding 4: `vol:/data:rx` meant `ro`, and the CLI would mount it writable).
pub(crate) fn parse_volume(text: &str) -> Result<ServiceVolume, String> {
    let mut volume = ServiceVolume::default();
    match text.len() {
        0 => return Err("invalid empty volume spec".to_string()),
        1 | 2 => {
            volume.target = Some(text.to_string());
            volume.kind = Some(MountType::Volume);
            return Ok(volume);
        }
        _ => {}
    }
    let invalid = |why: &str| format!("invalid volume {text:?}: {why}");
    let mut buffer = String::new();
    let mut source: Option<String> = None;
    let mut target: Option<String> = None;
    for c in text.chars().map(Some).chain([None]) {
        let is_drive = c == Some(':')
            && buffer.chars().count() == 1
            && buffer.starts_with(char::is_alphabetic);
        match c {
            Some(':') if is_drive => buffer.push(':'),
            Some(':') | None => {
                if buffer.is_empty() {
                    return Err(invalid("empty section between colons"));
                }
                let at_end = c.is_none();
                let part = std::mem::take(&mut buffer);
                if source.is_none() && at_end {
                    target = Some(part);
                } else if source.is_none() {
                    source = Some(part);
                } else if target.is_none() {
                    target = Some(part);
                } else if !at_end {
                    return Err(invalid("too many colons"));
                } else {
                    for option in part.split(',') {
                        match option {
                            "ro" => volume.read_only = Some(true),
                            "rw" => volume.read_only = Some(false),
                            "nocopy" => {
                                volume.volume = Some(VolumeOptions {
                                    nocopy: Some(true),
                                    subpath: None,
                                })
                            }
                            p if PROPAGATIONS.contains(&p) => {
                                volume.bind = Some(BindOptions {
                                    propagation: Some(p.to_string()),
                                })
                            }
                            o if IGNORED_OPTIONS.contains(&o) => {}
                            unknown => {
                                return Err(invalid(&format!(
                                    "unknown option `{unknown}`; the options are ro, rw, \
                                     nocopy, z, Z, a propagation ({}) or a consistency ({})",
                                    PROPAGATIONS.join(", "),
                                    IGNORED_OPTIONS[2..].join(", ")
                                )))
                            }
                        }
                    }
                }
            }
            Some(c) => buffer.push(c),
        }
    }
    let is_path = source.as_deref().is_some_and(is_file_path);
    volume.kind = Some(if is_path {
        MountType::Bind
    } else {
        MountType::Volume
    });
    volume.source = source;
    volume.target = target;
    Ok(volume)
}

fn is_file_path(source: &str) -> bool {
    if source.starts_with(['.', '/', '~']) {
        return true;
    }
    if source.chars().count() == 1 {
        return false;
    }
    if source.starts_with("\\\\") {
        return true;
    }
    let mut chars = source.chars();
    chars.next().is_some_and(char::is_alphabetic) && chars.next() == Some(':')
}

/// What `restart:` means to Swarm when `deploy.restart_policy` is not set: `no` is no policy,
/// `always` and `unless-stopped` restart on `any` exit, `on-failure` on failure; `:N` caps
/// the attempts (none when 0).
pub(crate) fn parse_restart(text: &str) -> Result<Option<(RestartCondition, Option<u64>)>, String> {
    if text.is_empty() {
        return Ok(None);
    }
    let invalid = |why: &str| format!("invalid restart policy {text:?}: {why}");
    let (name, count) = match text.split_once(':') {
        Some(("", _)) => return Err(invalid("no policy before the colon")),
        Some((name, count)) => (name, count),
        None => (text, ""),
    };
    let count: i64 = if count.is_empty() {
        0
    } else {
        let digits = count.strip_prefix(['+', '-']).unwrap_or(count);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid("the maximum retry count must be a whole number"));
        }
        count
            .parse()
            .map_err(|_| invalid("the maximum retry count is too large"))?
    };
    if count < 0 {
        return Err(invalid("the maximum retry count cannot be negative"));
    }
    let attempts = (count > 0).then_some(count as u64);
    match name {
        "no" => Ok(None),
        "always" | "unless-stopped" => Ok(Some((RestartCondition::Any, attempts))),
        "on-failure" => Ok(Some((RestartCondition::OnFailure, attempts))),
        _ => Err(invalid(
            "expected `no`, `always`, `unless-stopped` or `on-failure[:N]`",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ports(text: &str) -> Vec<(u32, Option<u32>, Protocol)> {
        parse_ports(text)
            .unwrap()
            .ports
            .into_iter()
            .map(|p| (p.target, p.published, p.protocol.unwrap()))
            .collect()
    }

    #[test]
    fn ports_as_nat_parses_them() {
        use Protocol::*;
        assert_eq!(ports("80"), [(80, None, Tcp)]);
        assert_eq!(ports("8080:80"), [(80, Some(8080), Tcp)]);
        assert_eq!(ports("53:53/UDP"), [(53, Some(53), Udp)]);
        assert_eq!(
            ports("127.0.0.1:5353-5354:53-54/udp"),
            [(53, Some(5353), Udp), (54, Some(5354), Udp)]
        );
        // One target with a published range: published on each port of the range.
        assert_eq!(
            ports("8000-8002:80"),
            [
                (80, Some(8000), Tcp),
                (80, Some(8001), Tcp),
                (80, Some(8002), Tcp)
            ]
        );
        // Within one item, by `PORT/PROTOCOL` as text.
        assert_eq!(ports("9-10"), [(10, None, Tcp), (9, None, Tcp)]);
        assert_eq!(ports("[::1]:80:80"), [(80, Some(80), Tcp)]);
        assert_eq!(
            parse_ports("127.0.0.1:80:80")
                .unwrap()
                .ignored_ip
                .as_deref(),
            Some("127.0.0.1")
        );
        assert_eq!(parse_ports("0.0.0.0:80:80").unwrap().ignored_ip, None);
        for bad in [
            "80:http",
            "70000:80",
            "80/xtp",
            "1-3:80-81",
            "nothost:80:80",
            "",
            "80:",
        ] {
            assert!(parse_ports(bad).is_err(), "{bad} should be refused");
        }
        assert_eq!(
            parse_ports("70000:80").err().unwrap(),
            "invalid port \"70000:80\": published port \"70000\" is out of range (0 to 65535)"
        );
    }

    #[test]
    fn volumes_as_volumespec_parses_them() {
        let v = parse_volume("./data:/data:ro,z").unwrap();
        assert_eq!(v.kind, Some(MountType::Bind));
        assert_eq!(
            (v.source.as_deref(), v.target.as_deref()),
            (Some("./data"), Some("/data"))
        );
        assert_eq!(v.read_only, Some(true));
        let v = parse_volume("/var/lib/example/:/data:ro").unwrap();
        assert_eq!(v.source.as_deref(), Some("/var/lib/example/"));
        let v = parse_volume("data:/data:nocopy,rshared").unwrap();
        assert_eq!(v.kind, Some(MountType::Volume));
        assert_eq!(v.volume.unwrap().nocopy, Some(true));
        assert_eq!(v.bind.unwrap().propagation.as_deref(), Some("rshared"));
        let v = parse_volume("/anonymous").unwrap();
        assert_eq!((v.source, v.target.as_deref()), (None, Some("/anonymous")));
        let v = parse_volume("C:\\data:/data").unwrap();
        assert_eq!(v.source.as_deref(), Some("C:\\data"));
        assert_eq!(v.kind, Some(MountType::Bind));
        let v = parse_volume("/a:/b:cached").unwrap();
        assert_eq!(v.consistency, None);
        assert_eq!(parse_volume("ab").unwrap().target.as_deref(), Some("ab"));
        assert!(parse_volume("").is_err());
        assert!(parse_volume("ab::c").is_err());
        assert!(parse_volume("ab:cd:ro:x").is_err());
    }

    #[test]
    fn an_unknown_volume_option_is_refused_naming_the_known_ones() {
        for known in [
            "ro",
            "rw",
            "nocopy",
            "z",
            "Z",
            "rslave",
            "delegated",
            "ro,Z,consistent",
        ] {
            assert!(
                parse_volume(&format!("vol:/data:{known}")).is_ok(),
                "{known}"
            );
        }
        assert_eq!(
            parse_volume("vol:/data:rx"),
            Err(
                "invalid volume \"vol:/data:rx\": unknown option `rx`; the options are ro, \
                 rw, nocopy, z, Z, a propagation (rprivate, private, rshared, shared, rslave, \
                 slave) or a consistency (cached, delegated, consistent)"
                    .to_owned()
            )
        );
        assert!(parse_volume("/srv:/srv:ro,rx").is_err());
        assert!(parse_volume("/srv:/srv:ro,").is_err());
    }

    #[test]
    fn restart_as_the_docker_cli_reads_it() {
        use RestartCondition::*;
        assert_eq!(parse_restart("always"), Ok(Some((Any, None))));
        assert_eq!(parse_restart("unless-stopped"), Ok(Some((Any, None))));
        assert_eq!(parse_restart("on-failure"), Ok(Some((OnFailure, None))));
        assert_eq!(
            parse_restart("on-failure:3"),
            Ok(Some((OnFailure, Some(3))))
        );
        assert_eq!(parse_restart("no"), Ok(None));
        for bad in ["sometimes", ":3", "on-failure:x", "on-failure:-1"] {
            assert!(parse_restart(bad).is_err(), "{bad}");
        }
    }
}
