//! Built-in TLS for teams without a proxy in front: a certificate and key from PEM files
//! (`--tls-cert`, `--tls-key`), or a self-signed pair made once in the state directory
//! (`--tls-self-signed`). rustls with the ring provider; HTTP/1.1 only, like the plain server.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::ring::default_provider;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// A certificate or key that cannot be used, naming the file and why.
#[derive(Debug, thiserror::Error)]
#[error("{what} {}: {detail}", path.display())]
pub struct TlsError {
    /// `--tls-cert`, `--tls-key`, or what was being made.
    pub what: &'static str,
    pub path: PathBuf,
    pub detail: String,
}

/// The server side of TLS, shared by every connection.
pub type TlsConfig = Arc<rustls::ServerConfig>;

/// Reads a PEM certificate chain (leaf first) and its private key (PKCS#8, PKCS#1 or SEC1).
pub fn load(cert: &Path, key: &Path) -> Result<TlsConfig, TlsError> {
    let error = |what, path: &Path, detail: String| TlsError {
        what,
        path: path.to_owned(),
        detail,
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| error("--tls-cert", cert, e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| error("--tls-cert", cert, e.to_string()))?;
    if chain.is_empty() {
        return Err(error(
            "--tls-cert",
            cert,
            "no PEM certificate (-----BEGIN CERTIFICATE-----) in the file".into(),
        ));
    }
    let private = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| error("--tls-key", key, format!("no PEM private key: {e}")))?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| error("--tls-cert", cert, e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(|e| {
            error(
                "--tls-key",
                key,
                format!("does not fit the certificate: {e}"),
            )
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// TLS over `stream` (connected), trusting exactly the leaf certificate of the PEM file `cert`
/// (the server's own, `--tls-cert` or the self-signed one): what `swarmkeeper healthcheck`
/// uses to ask its own server on loopback, where no CA and no host name can vouch for it.
/// The handshake happens on first read or write. Errors name the file.
pub fn pinned_stream(
    cert: &Path,
    stream: std::net::TcpStream,
) -> Result<impl std::io::Read + std::io::Write, TlsError> {
    let config = pinned_client(cert)?;
    let peer = stream.peer_addr().map_err(|e| TlsError {
        what: "connecting with",
        path: cert.to_owned(),
        detail: e.to_string(),
    })?;
    let name = rustls_pki_types::ServerName::IpAddress(peer.ip().into());
    let connection = rustls::ClientConnection::new(config, name).map_err(|e| TlsError {
        what: "connecting with",
        path: cert.to_owned(),
        detail: e.to_string(),
    })?;
    Ok(rustls::StreamOwned::new(connection, stream))
}

fn pinned_client(cert: &Path) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let error = |detail: String| TlsError {
        what: "the server's certificate",
        path: cert.to_owned(),
        detail,
    };
    let leaf = CertificateDer::pem_file_iter(cert)
        .map_err(|e| error(e.to_string()))?
        .next()
        .ok_or_else(|| error("no PEM certificate in the file".into()))?
        .map_err(|e| error(e.to_string()))?;
    let provider = Arc::new(default_provider());
    let verifier = Pinned {
        leaf,
        algorithms: provider.signature_verification_algorithms,
    };
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| error(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Accepts the one certificate it was given (signatures still checked), whatever its issuer
/// and names.
#[derive(Debug)]
struct Pinned {
    leaf: CertificateDer<'static>,
    algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
}

impl rustls::client::danger::ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &rustls_pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.leaf.as_ref() {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The certificate the server serves, from its flags: `--tls-cert`'s file, else with
/// `--tls-self-signed` the state directory's own ([`self_signed_paths`]), else none (plain
/// HTTP). `swarmkeeper server` serves it, `swarmkeeper healthcheck` trusts exactly it: both
/// read the same flags and variables and resolve them here.
pub fn certificate(
    tls_cert: Option<&Path>,
    tls_self_signed: bool,
    state_dir: &Path,
) -> Option<PathBuf> {
    match tls_cert {
        Some(cert) => Some(cert.to_owned()),
        None if tls_self_signed => Some(self_signed_paths(state_dir).0),
        None => None,
    }
}

/// Where [`self_signed`] keeps its pair: `<state dir>/tls/self-signed.crt` and `.key`.
pub fn self_signed_paths(state_dir: &Path) -> (PathBuf, PathBuf) {
    let dir = state_dir.join("tls");
    (dir.join("self-signed.crt"), dir.join("self-signed.key"))
}

/// The self-signed certificate of the state directory and the names it covers: made on the
/// first call for `names` (host names or IP addresses, `localhost` always included), reused
/// afterwards so that browsers and `curl --cacert` keep trusting the same one, and made anew
/// (for the names it had and `names`) only when a name of `required` is not among its names.
/// `required` are the names an operator asked for (`--tls-san`); the other `names` (this
/// machine's, the swarm's nodes') are taken at the first start only, so that a node added later
/// does not change the certificate browsers trust. The names are kept beside the pair, one a
/// line (`tls/self-signed.names`); a pair without that file (made by an earlier version) counts
/// as covering none of `required`. The key file is readable by its owner only. Answers the paths
/// of the pair.
pub fn self_signed(
    state_dir: &Path,
    names: &[String],
    required: &[String],
) -> Result<(PathBuf, PathBuf), TlsError> {
    let (cert, key) = self_signed_paths(state_dir);
    let names_file = cert.with_extension("names");
    let error = |path: &Path, detail: String| TlsError {
        what: "making a self-signed certificate in",
        path: path.to_owned(),
        detail,
    };
    let mut kept: Vec<String> = std::fs::read_to_string(&names_file)
        .map(|text| text.lines().map(str::to_owned).collect())
        .unwrap_or_default();
    if cert.exists() && key.exists() {
        if required.iter().all(|name| kept.contains(name)) {
            return Ok((cert, key));
        }
    } else {
        kept.clear();
    }
    let mut all = vec!["localhost".to_owned()];
    for name in kept.iter().chain(names).chain(required) {
        if !all.contains(name) {
            all.push(name.clone());
        }
    }
    let made =
        rcgen::generate_simple_self_signed(all.clone()).map_err(|e| error(&cert, e.to_string()))?;
    let dir = cert.parent().expect("a file in a directory");
    std::fs::create_dir_all(dir).map_err(|e| error(dir, e.to_string()))?;
    write_private(&key, made.signing_key.serialize_pem().as_bytes())
        .map_err(|e| error(&key, e.to_string()))?;
    std::fs::write(&cert, made.cert.pem()).map_err(|e| error(&cert, e.to_string()))?;
    std::fs::write(&names_file, all.join("\n") + "\n")
        .map_err(|e| error(&names_file, e.to_string()))?;
    Ok((cert, key))
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_self_signed_pair_is_made_once_and_loads() {
        let dir = std::env::temp_dir().join(format!("sk-tls-{}", std::process::id()));
        let (cert, key) = self_signed(&dir, &["dash.example".into()], &[]).unwrap();
        let first = std::fs::read(&cert).unwrap();
        load(&cert, &key).unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        self_signed(&dir, &["other.example".into()], &[]).unwrap();
        assert_eq!(
            std::fs::read(&cert).unwrap(),
            first,
            "reused, not made again"
        );
        self_signed(&dir, &[], &["dash.example".into()]).unwrap();
        assert_eq!(
            std::fs::read(&cert).unwrap(),
            first,
            "a required name it has: reused"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Tryout 11 finding 1: an operator who reaches the dashboard by an address the first
    /// certificate does not name gets one that names it, and keeps the names it had.
    #[test]
    fn a_required_name_the_certificate_lacks_makes_a_new_one_that_keeps_the_old_names() {
        let dir = std::env::temp_dir().join(format!("sk-tls-san-{}", std::process::id()));
        let (cert, key) = self_signed(&dir, &["manager-1".into()], &[]).unwrap();
        let first = std::fs::read(&cert).unwrap();
        self_signed(&dir, &["manager-1".into()], &["192.0.2.10".into()]).unwrap();
        assert_ne!(std::fs::read(&cert).unwrap(), first, "made anew");
        load(&cert, &key).unwrap();
        let names = std::fs::read_to_string(cert.with_extension("names")).unwrap();
        assert_eq!(names, "localhost\nmanager-1\n192.0.2.10\n");
        let der = CertificateDer::from_pem_file(&cert).unwrap();
        let ip = [192u8, 0, 2, 10];
        assert!(
            der.windows(4).any(|w| w == ip),
            "the address is in the certificate as an IP address"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_certificate_is_the_flag_s_file_else_the_self_signed_one() {
        let state = Path::new("/var/lib/sk");
        let own = Path::new("/run/secrets/tls.crt");
        assert_eq!(certificate(Some(own), false, state), Some(own.to_owned()));
        assert_eq!(
            certificate(None, true, state),
            Some(PathBuf::from("/var/lib/sk/tls/self-signed.crt"))
        );
        assert_eq!(certificate(None, false, state), None);
    }

    #[test]
    fn unusable_files_name_the_flag_and_the_file() {
        let dir = std::env::temp_dir().join(format!("sk-tls-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not pem\n").unwrap();
        let e = load(&empty, &empty).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!(
                "--tls-cert {}: no PEM certificate",
                empty.display()
            )),
            "{e}"
        );
        let (cert, _) = self_signed(&dir, &[], &[]).unwrap();
        let e = load(&cert, &empty).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!(
                "--tls-key {}: no PEM private key",
                empty.display()
            )),
            "{e}"
        );
        let e = load(&dir.join("missing.pem"), &empty)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("--tls-cert "), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
