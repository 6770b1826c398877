//! Registry host names as docker reads them: which `config.json` key holds a registry's
//! credentials, and where its API answers.

use swarmkeeper_reference::DOCKER_HUB_DOMAIN;

/// The key under which the docker CLI keeps Docker Hub's credentials (`docker login` with no
/// server writes it), and the server address its helpers are asked about.
pub const INDEX_SERVER: &str = "https://index.docker.io/v1/";

/// Docker Hub's distribution API host: `docker.io/…` images are pulled from it.
pub const DOCKER_HUB_API_HOST: &str = "registry-1.docker.io";

/// Whether a registry host (as in an image reference, or a `config.json` key reduced by
/// [`convert_to_hostname`]) is Docker Hub: `docker.io`, `index.docker.io`,
/// `registry-1.docker.io`, with or without `:443`.
pub fn is_docker_hub(host: &str) -> bool {
    let host = host.strip_suffix(":443").unwrap_or(host);
    matches!(
        host,
        DOCKER_HUB_DOMAIN | "index.docker.io" | DOCKER_HUB_API_HOST
    )
}

/// The `config.json` key (and credential helper server address) for a registry host, as the
/// docker CLI asks for it: [`INDEX_SERVER`] for Docker Hub, the host itself (with its port)
/// otherwise.
pub fn credential_key(host: &str) -> &str {
    if is_docker_hub(host) {
        INDEX_SERVER
    } else {
        host
    }
}

/// The host whose `/v2/` API serves a reference's domain: [`DOCKER_HUB_API_HOST`] for
/// Docker Hub, the domain otherwise.
pub fn api_host(domain: &str) -> &str {
    if is_docker_hub(domain) {
        DOCKER_HUB_API_HOST
    } else {
        domain
    }
}

/// The docker CLI's `ConvertToHostname`: a `config.json` key such as `https://host:5000/v1/`
/// reduced to `host:5000` (old files keep URLs as keys).
pub fn convert_to_hostname(key: &str) -> &str {
    let rest = key
        .strip_prefix("http://")
        .or_else(|| key.strip_prefix("https://"))
        .unwrap_or(key);
    rest.split('/').next().unwrap_or(rest)
}

/// Whether a host is on the loopback network (`localhost`, `127.0.0.0/8`, `::1`), which
/// docker treats as an insecure registry by default (plain HTTP allowed).
pub fn is_loopback(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(rest),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name == "localhost"
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_hub_aliases() {
        for hub in [
            "docker.io",
            "index.docker.io",
            "registry-1.docker.io",
            "docker.io:443",
        ] {
            assert_eq!(credential_key(hub), INDEX_SERVER, "{hub}");
            assert_eq!(api_host(hub), DOCKER_HUB_API_HOST);
        }
        assert_eq!(credential_key("ghcr.io"), "ghcr.io");
        assert_eq!(credential_key("localhost:5000"), "localhost:5000");
        assert_eq!(api_host("localhost:5000"), "localhost:5000");
    }

    #[test]
    fn converts_keys_to_hostnames() {
        assert_eq!(
            convert_to_hostname("https://index.docker.io/v1/"),
            "index.docker.io"
        );
        assert_eq!(convert_to_hostname("http://host:5000/v2/"), "host:5000");
        assert_eq!(convert_to_hostname("host:5000"), "host:5000");
    }

    #[test]
    fn loopback() {
        for yes in [
            "localhost",
            "localhost:5000",
            "127.0.0.1",
            "127.1.2.3:443",
            "[::1]:5000",
        ] {
            assert!(is_loopback(yes), "{yes}");
        }
        for no in ["10.0.0.1:5000", "registry.example", "[fe80::1]:5000"] {
            assert!(!is_loopback(no), "{no}");
        }
    }
}
