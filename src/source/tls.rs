//! TLS for the SQL connections: the one place that turns an endpoint's [`TlsSettings`] into a
//! rustls [`ClientConfig`] (used by [`crate::source::connect`] through `tokio-postgres-rustls`).
//! The replication connection gets the same settings mapped onto pgwire-replication's own
//! `TlsConfig` (`crate::source::replication`), which is built on this same rustls.
//!
//! Crypto provider: ring, explicitly. pgwire-replication installs ring as rustls' process
//! default, and both use the one `rustls` 0.23 in the build, so TLS adds no second crypto
//! library and both connection kinds negotiate with the same algorithms.
//!
//! `sslrootcert=system` uses Mozilla's CA list compiled in (`webpki-roots`) rather than the
//! OS store (`rustls-native-certs`): pgwire-replication trusts exactly that list when given no
//! CA file, so SQL and replication connections accept the same servers; it also works the same
//! in a scratch container without `/etc/ssl`. A private CA added to the OS store is not
//! trusted this way: name its PEM file in `sslrootcert` instead.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::config::{RootCert, TlsSettings};

/// The rustls configuration for an endpoint's SQL connections. Fails only if the root
/// certificate store cannot back a verifier (the config loader already checked it is not
/// empty).
pub fn client_config(tls: &TlsSettings) -> Result<ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?;
    let verifier: Arc<dyn ServerCertVerifier> = if !tls.verifies_chain() {
        // prefer / require without sslrootcert: encrypted, but any certificate is accepted,
        // as in libpq. The handshake signatures are still checked, so the server must hold
        // the key of the certificate it presents.
        Arc::new(AcceptAnyCertificate {
            algorithms: provider.signature_verification_algorithms,
        })
    } else {
        let roots = match &tls.root_cert {
            Some(RootCert::File { roots, .. }) => roots.clone(),
            Some(RootCert::System) => Arc::new(system_roots()),
            None => return Err(format!("{} needs sslrootcert", tls.describe())),
        };
        if tls.verifies_host_name() {
            WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
                .build()
                .map_err(|e| format!("TLS setup: {e}"))?
        } else {
            Arc::new(ChainOnly {
                roots,
                algorithms: provider.signature_verification_algorithms,
            })
        }
    };
    Ok(builder
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth())
}

/// The `MakeTlsConnect` for `tokio_postgres::Config::connect`.
pub fn connector(tls: &TlsSettings) -> Result<tokio_postgres_rustls::MakeRustlsConnect, String> {
    client_config(tls).map(tokio_postgres_rustls::MakeRustlsConnect::new)
}

/// `sslrootcert=system`: Mozilla's root CAs (see the module documentation for why these).
fn system_roots() -> RootCertStore {
    RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    }
}

/// `prefer` / `require` without a root certificate: accepts any certificate, verifies the
/// handshake signatures made with its key.
#[derive(Debug)]
struct AcceptAnyCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// `verify-ca` (and `require` with `sslrootcert`): the chain must lead to a trusted root and
/// be valid now, but the certificate need not name the host.
#[derive(Debug)]
struct ChainOnly {
    roots: Arc<RootCertStore>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let cert = rustls::server::ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &cert,
            &self.roots,
            intermediates,
            now,
            self.algorithms.all,
        )?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
