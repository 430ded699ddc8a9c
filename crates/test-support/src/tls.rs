//! Real HTTPS for the tests: a CA made for one test (rcgen), a server
//! certificate it signs for `localhost` and 127.0.0.1, and an HTTPS server for
//! any axum router, so clients are tested against real TLS handshakes.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::Router;
use hyper_util::{rt::TokioIo, service::TowerToHyperService};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose, SanType};
use tokio_rustls::{
    TlsAcceptor,
    rustls::{
        ServerConfig,
        pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer},
    },
};

use crate::WAIT;

/// A certificate authority that exists for one test; its certificate is
/// written to a PEM file that clients are told to trust.
#[derive(Debug)]
pub struct TestCa {
    ca_file: PathBuf,
    server_chain: Vec<CertificateDer<'static>>,
    server_key: Vec<u8>,
    server_pem: (String, String),
}

impl TestCa {
    /// A new CA and a server certificate for `localhost` and 127.0.0.1 signed by it.
    pub fn new() -> Self {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "eshop-tracing test CA");
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("CA key")).expect("CA certificate");

        let mut params = CertificateParams::new(vec!["localhost".to_owned()]).expect("server params");
        params.subject_alt_names.push(SanType::IpAddress([127, 0, 0, 1].into()));
        let key = KeyPair::generate().expect("server key");
        let certificate = params.signed_by(&key, &ca).expect("server certificate");

        let ca_file = scratch_dir().join("ca.pem");
        std::fs::write(&ca_file, ca.pem()).expect("write the CA's PEM");
        Self {
            ca_file,
            server_chain: vec![certificate.der().clone()],
            server_key: key.serialize_der(),
            server_pem: (certificate.pem(), key.serialize_pem()),
        }
    }

    /// The server certificate and its private key, PEM, for servers that take
    /// them that way (tonic's `Identity::from_pem`).
    pub fn server_pem(&self) -> (&str, &str) {
        (&self.server_pem.0, &self.server_pem.1)
    }

    /// The PEM file of the CA's certificate.
    pub fn ca_file(&self) -> &Path {
        &self.ca_file
    }

    fn server_config(&self) -> ServerConfig {
        ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(
                self.server_chain.clone(),
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.server_key.clone())),
            )
            .expect("a server certificate and its key")
    }
}

impl Default for TestCa {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TestCa {
    fn drop(&mut self) {
        if let Some(dir) = self.ca_file.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A folder of its own under the system's temporary directory.
fn scratch_dir() -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "eshop-tracing-tls-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("create a scratch folder");
    dir
}

/// An HTTPS server on 127.0.0.1 serving a router with the CA's server certificate.
#[derive(Debug)]
pub struct HttpsServer {
    pub addr: SocketAddr,
    handshakes: Arc<AtomicUsize>,
    failed_handshakes: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl HttpsServer {
    pub async fn start(router: Router, ca: &TestCa) -> Self {
        let acceptor = TlsAcceptor::from(Arc::new(ca.server_config()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local address");
        let handshakes = Arc::new(AtomicUsize::new(0));
        let failed_handshakes = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn({
            let (handshakes, failed_handshakes) = (handshakes.clone(), failed_handshakes.clone());
            async move {
                while let Ok((tcp, _)) = listener.accept().await {
                    let (acceptor, router) = (acceptor.clone(), router.clone());
                    let (handshakes, failed_handshakes) = (handshakes.clone(), failed_handshakes.clone());
                    tokio::spawn(async move {
                        let Ok(tls) = acceptor.accept(tcp).await else {
                            failed_handshakes.fetch_add(1, Ordering::SeqCst);
                            return;
                        };
                        handshakes.fetch_add(1, Ordering::SeqCst);
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(tls), TowerToHyperService::new(router))
                            .await;
                    });
                }
            }
        });
        Self {
            addr,
            handshakes,
            failed_handshakes,
            task,
        }
    }

    /// `https://localhost:<port>`: the name the certificate is for.
    pub fn url(&self) -> String {
        format!("https://localhost:{}", self.addr.port())
    }

    /// TLS handshakes that completed.
    pub fn handshakes(&self) -> usize {
        self.handshakes.load(Ordering::SeqCst)
    }

    /// Waits until a client has refused (or botched) a handshake, e.g. because
    /// it does not trust the CA; panics after [`WAIT`].
    pub async fn wait_for_failed_handshake(&self) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while self.failed_handshakes.load(Ordering::SeqCst) == 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no failed TLS handshake within {WAIT:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for HttpsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
