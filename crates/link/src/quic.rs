//! The QUIC shell: carries a [`Session`] over quinn during a contact, with mutual TLS under the constellation CA.
//!
//! Every peer presents a certificate signed by the constellation CA; the server checks the client's chain, the
//! client checks the server's chain *and* that it names the identity it meant to reach. A client then says which
//! identity it speaks for, and the server refuses the connection unless the client's certificate binds exactly
//! that identity. TLS 1.3 only, ALPN `odc/1`, and no 0-RTT: the server accepts no early data, so a captured
//! first flight can never be replayed into a command.
//!
//! One contact is one QUIC connection with one bidirectional stream of length-prefixed session frames. The session
//! outlives the connection: when a contact ends, whatever was in flight is resent on the next one. The hello and
//! its answer name each side's session (a number drawn when the process began), so a side that sees a new number
//! knows its peer restarted and starts a fresh session with it instead of discarding the new one's messages as
//! repeats.

use crate::pki::{Credentials, Identity, PkiError};
use crate::session::{Event, Millis, Priority, Session};
use bytes::Bytes;
use quinn::{
    ClientConfig, Connection, Endpoint, RecvStream, SendStream, ServerConfig, TransportConfig,
    VarInt,
};
use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::{CertificateDer, ServerName};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// The application protocol, with the wire major version.
pub const ALPN: &[u8] = b"odc/1";

/// Largest session frame accepted: a 64 KiB chunk and its header, with room to spare. Larger lengths are refused
/// before anything is allocated.
pub const MAX_FRAME: usize = 1 << 20;

const HELLO_MAGIC: &[u8; 4] = b"odc1";
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

/// Close codes the shell uses.
pub mod close_code {
    /// The contact ended normally.
    pub const DONE: u32 = 0;
    /// The client's certificate does not bind the identity it claimed.
    pub const IDENTITY: u32 = 1;
    /// The peer broke the framing.
    pub const PROTOCOL: u32 = 2;
}

/// What can go wrong on a link.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// Credentials or trust anchors are unusable.
    #[error(transparent)]
    Pki(#[from] PkiError),
    /// TLS configuration was refused.
    #[error("TLS configuration: {0}")]
    Tls(String),
    /// The socket could not be opened.
    #[error("cannot open a QUIC endpoint on {addr}: {source}")]
    Bind {
        /// Address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The connection could not be made or was lost (including every refused handshake).
    #[error("connection: {0}")]
    Connection(#[from] quinn::ConnectionError),
    /// The connection could not be started.
    #[error("connect: {0}")]
    Connect(#[from] quinn::ConnectError),
    /// The peer's certificate does not bind the identity it claims.
    #[error("peer claims to be {claimed} but its certificate does not say so")]
    IdentityMismatch {
        /// What the peer said.
        claimed: String,
    },
    /// The peer broke the protocol.
    #[error("protocol: {0}")]
    Protocol(String),
    /// Writing to the stream failed.
    #[error("write: {0}")]
    Write(#[from] quinn::WriteError),
    /// Reading from the stream failed.
    #[error("read: {0}")]
    Read(#[from] quinn::ReadError),
    /// A frame the session refused.
    #[error(transparent)]
    Frame(#[from] crate::session::SessionFrameError),
}

fn provider() -> Arc<CryptoProvider> {
    // Always the ring provider, explicitly: with two providers in the graph the implicit default would panic.
    Arc::new(rustls::crypto::ring::default_provider())
}

fn roots(ca: &CertificateDer<'static>) -> Result<Arc<RootCertStore>, LinkError> {
    let mut roots = RootCertStore::empty();
    roots
        .add(ca.clone())
        .map_err(|e| LinkError::Tls(format!("CA certificate: {e}")))?;
    Ok(Arc::new(roots))
}

fn transport(idle: Duration) -> Arc<TransportConfig> {
    let mut t = TransportConfig::default();
    // A contact is a few minutes of a fast link: windows sized for bulk transfer, idle timeout for a lost signal.
    t.stream_receive_window(VarInt::from_u32(16 << 20));
    t.receive_window(VarInt::from_u32(32 << 20));
    t.send_window(32 << 20);
    t.max_idle_timeout(idle.try_into().ok());
    t.keep_alive_interval(Some(idle / 3));
    Arc::new(t)
}

/// A session number for this process that a restart will not repeat (the clock's nanoseconds and the process id,
/// hashed); never 0, which means "none named".
pub fn new_session_id() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut seed = nanos.to_le_bytes().to_vec();
    seed.extend_from_slice(&std::process::id().to_le_bytes());
    let hash = blake3::hash(&seed);
    let mut first = [0u8; 8];
    first.copy_from_slice(&hash.as_bytes()[..8]);
    u64::from_le_bytes(first) | 1
}

/// How a link endpoint behaves.
#[derive(Debug, Clone, Copy)]
pub struct LinkConfig {
    /// A connection silent for this long is lost (loss of signal).
    pub idle_timeout: Duration,
}

impl Default for LinkConfig {
    fn default() -> Self {
        LinkConfig {
            idle_timeout: Duration::from_secs(10),
        }
    }
}

/// A QUIC endpoint that accepts links (ground or a relaying node), requiring client certificates from the CA.
pub fn server_endpoint(
    bind: SocketAddr,
    creds: &Credentials,
    ca: &CertificateDer<'static>,
    config: LinkConfig,
) -> Result<Endpoint, LinkError> {
    let roots = roots(ca)?;
    let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider())
        .build()
        .map_err(|e| LinkError::Tls(e.to_string()))?;
    let mut tls = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| LinkError::Tls(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(creds.chain()?, creds.key()?)
        .map_err(|e| LinkError::Tls(e.to_string()))?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    tls.max_early_data_size = 0;
    let quic = quinn::crypto::rustls::QuicServerConfig::try_from(tls)
        .map_err(|e| LinkError::Tls(e.to_string()))?;
    let mut server = ServerConfig::with_crypto(Arc::new(quic));
    server.transport_config(transport(config.idle_timeout));
    Endpoint::server(server, bind).map_err(|source| LinkError::Bind { addr: bind, source })
}

/// A QUIC endpoint that opens links, presenting `creds` and trusting only the CA.
pub fn client_endpoint(
    bind: SocketAddr,
    creds: &Credentials,
    ca: &CertificateDer<'static>,
    config: LinkConfig,
) -> Result<Endpoint, LinkError> {
    let mut tls = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| LinkError::Tls(e.to_string()))?
        .with_root_certificates(roots(ca)?)
        .with_client_auth_cert(creds.chain()?, creds.key()?)
        .map_err(|e| LinkError::Tls(e.to_string()))?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    tls.enable_early_data = false;
    let quic = quinn::crypto::rustls::QuicClientConfig::try_from(tls)
        .map_err(|e| LinkError::Tls(e.to_string()))?;
    let mut client = ClientConfig::new(Arc::new(quic));
    client.transport_config(transport(config.idle_timeout));
    let mut endpoint =
        Endpoint::client(bind).map_err(|source| LinkError::Bind { addr: bind, source })?;
    endpoint.set_default_client_config(client);
    Ok(endpoint)
}

/// An open, authenticated link to one peer for the length of a contact.
pub struct Link {
    conn: Connection,
    send: SendStream,
    recv: RecvStream,
    peer: Identity,
    session_id: u64,
}

/// How a contact ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContactEnd {
    /// This side ended it.
    Stopped,
    /// The peer ended it, or the signal was lost.
    Lost,
}

/// Opens a link to `server` at `addr`, speaking for `me`. Fails unless the server's certificate names `server`
/// and the server accepts our certificate as `me`.
pub async fn connect(
    endpoint: &Endpoint,
    addr: SocketAddr,
    server: &Identity,
    me: &Identity,
) -> Result<Link, LinkError> {
    connect_session(endpoint, addr, server, me, 0).await
}

/// As [`connect`], naming the client's session (see [`Link::session_id`]).
pub async fn connect_session(
    endpoint: &Endpoint,
    addr: SocketAddr,
    server: &Identity,
    me: &Identity,
    session_id: u64,
) -> Result<Link, LinkError> {
    let conn = endpoint.connect(addr, &server.dns_name())?.await?;
    let (mut send, mut recv) = conn.open_bi().await?;
    let name = me.dns_name();
    let mut hello = HELLO_MAGIC.to_vec();
    hello.push(name.len() as u8);
    hello.extend_from_slice(name.as_bytes());
    hello.extend_from_slice(&session_id.to_be_bytes());
    send.write_all(&hello).await.map_err(LinkError::Write)?;
    let mut ok = [0u8; 9];
    match tokio::time::timeout(HELLO_TIMEOUT, recv.read_exact(&mut ok)).await {
        Ok(Ok(())) if ok[0] == 1 => Ok(Link {
            conn,
            send,
            recv,
            peer: server.clone(),
            session_id: u64::from_be_bytes([
                ok[1], ok[2], ok[3], ok[4], ok[5], ok[6], ok[7], ok[8],
            ]),
        }),
        Ok(Ok(())) => Err(LinkError::Protocol("bad hello answer".into())),
        Ok(Err(_)) => Err(match conn.close_reason() {
            Some(reason) => LinkError::Connection(reason),
            None => LinkError::Protocol("link closed during hello".into()),
        }),
        Err(_) => Err(LinkError::Protocol("no hello answer".into())),
    }
}

/// Accepts one incoming link and checks that the client's certificate binds the identity it claims.
pub async fn accept(incoming: quinn::Incoming) -> Result<Link, LinkError> {
    accept_session(incoming, 0).await
}

/// As [`accept`], naming this side's session in the answer (see [`Link::session_id`]).
pub async fn accept_session(incoming: quinn::Incoming, session_id: u64) -> Result<Link, LinkError> {
    let mine = session_id;
    let conn = incoming.await?;
    let (mut send, mut recv) = match tokio::time::timeout(HELLO_TIMEOUT, conn.accept_bi()).await {
        Ok(r) => r?,
        Err(_) => return Err(refuse(&conn, close_code::PROTOCOL, "no hello")),
    };
    let mut head = [0u8; 5];
    let read = tokio::time::timeout(HELLO_TIMEOUT, recv.read_exact(&mut head)).await;
    if !matches!(read, Ok(Ok(()))) || &head[..4] != HELLO_MAGIC {
        return Err(refuse(&conn, close_code::PROTOCOL, "bad hello"));
    }
    let mut name = vec![0u8; usize::from(head[4]) + 8];
    if !matches!(
        tokio::time::timeout(HELLO_TIMEOUT, recv.read_exact(&mut name)).await,
        Ok(Ok(()))
    ) {
        return Err(refuse(&conn, close_code::PROTOCOL, "bad hello"));
    }
    let id_bytes = name.split_off(name.len() - 8);
    let mut session_id = [0u8; 8];
    session_id.copy_from_slice(&id_bytes);
    let session_id = u64::from_be_bytes(session_id);
    let claimed = String::from_utf8_lossy(&name).into_owned();
    let Ok(identity) = Identity::from_dns_name(&claimed) else {
        return Err(refuse(&conn, close_code::IDENTITY, "unknown identity"));
    };
    if !certificate_binds(&conn, &identity) {
        conn.close(
            VarInt::from_u32(close_code::IDENTITY),
            b"certificate does not bind the claimed identity",
        );
        return Err(LinkError::IdentityMismatch { claimed });
    }
    let mut answer = vec![1u8];
    answer.extend_from_slice(&mine.to_be_bytes());
    send.write_all(&answer).await?;
    Ok(Link {
        conn,
        send,
        recv,
        peer: identity,
        session_id,
    })
}

fn refuse(conn: &Connection, code: u32, why: &str) -> LinkError {
    conn.close(VarInt::from_u32(code), why.as_bytes());
    LinkError::Protocol(why.to_string())
}

/// Whether the peer's (already CA-verified) leaf certificate names `identity`.
fn certificate_binds(conn: &Connection, identity: &Identity) -> bool {
    let Some(any) = conn.peer_identity() else {
        return false;
    };
    let Ok(chain) = any.downcast::<Vec<CertificateDer<'static>>>() else {
        return false;
    };
    let Some(leaf) = chain.first() else {
        return false;
    };
    let Ok(cert) = webpki::EndEntityCert::try_from(leaf) else {
        return false;
    };
    let Ok(name) = ServerName::try_from(identity.dns_name()) else {
        return false;
    };
    cert.verify_is_valid_for_subject_name(&name).is_ok()
}

impl Link {
    /// Who is on the other end (proven by its certificate).
    pub fn peer(&self) -> &Identity {
        &self.peer
    }

    /// The peer's session number from its hello or its answer (0 if it named none): a new number means the peer
    /// restarted and lost its session.
    pub fn session_id(&self) -> u64 {
        self.session_id
    }

    /// The underlying connection (statistics, remote address).
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Runs `session` over this link until `stop` completes or the peer goes away, handing every event to
    /// `on_event`. The session is told the contact began and ended, so anything unacknowledged goes out again
    /// on the next link.
    pub async fn run(
        self,
        session: &mut Session,
        on_event: &mut (dyn FnMut(Event) + Send),
        stop: impl Future<Output = ()>,
    ) -> Result<ContactEnd, LinkError> {
        self.run_with(session, on_event, None, stop).await
    }

    /// As [`Link::run`], and messages arriving on `outgoing` during the contact are queued on the session as they
    /// come (a reply to what was just delivered goes out in the same contact). A closed channel only stops that.
    pub async fn run_interactive(
        self,
        session: &mut Session,
        on_event: &mut (dyn FnMut(Event) + Send),
        outgoing: &mut tokio::sync::mpsc::UnboundedReceiver<(Priority, Bytes)>,
        stop: impl Future<Output = ()>,
    ) -> Result<ContactEnd, LinkError> {
        self.run_with(session, on_event, Some(outgoing), stop).await
    }

    async fn run_with(
        mut self,
        session: &mut Session,
        on_event: &mut (dyn FnMut(Event) + Send),
        outgoing: Option<&mut tokio::sync::mpsc::UnboundedReceiver<(Priority, Bytes)>>,
        stop: impl Future<Output = ()>,
    ) -> Result<ContactEnd, LinkError> {
        session.handle_contact(true);
        let result = self.pump(session, on_event, outgoing, stop).await;
        session.handle_contact(false);
        match &result {
            Ok(ContactEnd::Stopped) => {
                let _ = self.send.finish();
                self.conn
                    .close(VarInt::from_u32(close_code::DONE), b"contact over");
            }
            Ok(ContactEnd::Lost) => {}
            Err(e) => {
                let code = if matches!(e, LinkError::Frame(_) | LinkError::Protocol(_)) {
                    close_code::PROTOCOL
                } else {
                    close_code::DONE
                };
                self.conn
                    .close(VarInt::from_u32(code), e.to_string().as_bytes());
            }
        }
        result
    }

    async fn pump(
        &mut self,
        session: &mut Session,
        on_event: &mut (dyn FnMut(Event) + Send),
        mut outgoing: Option<&mut tokio::sync::mpsc::UnboundedReceiver<(Priority, Bytes)>>,
        stop: impl Future<Output = ()>,
    ) -> Result<ContactEnd, LinkError> {
        const HIGH_WATER: usize = 1 << 20;
        let start = tokio::time::Instant::now();
        let now = || start.elapsed().as_millis() as Millis;
        // Frames waiting for the stream, as shared byte slices: a chunk's bytes go from the queued message to
        // quinn without a copy.
        let mut out: Vec<Bytes> = Vec::new();
        let mut out_bytes = 0usize;
        // Received bytes stay in quinn's buffers until a whole frame is there; then the session reads it in place.
        let mut frames = FrameDecoder::default();
        tokio::pin!(stop);
        // One timer, moved when the session's wake-up moves (a fresh timer per turn of the loop costs a lot at
        // the frame rates of a bulk transfer).
        let idle = || tokio::time::Instant::now() + Duration::from_secs(3600);
        let mut wake_at = idle();
        let timer = tokio::time::sleep_until(wake_at);
        tokio::pin!(timer);
        loop {
            while out_bytes < HIGH_WATER {
                let Some(t) = session.poll_transmit_parts(now()) else {
                    break;
                };
                let mut header = Vec::with_capacity(4 + t.header.len());
                header.extend_from_slice(&(t.len() as u32).to_be_bytes());
                header.extend_from_slice(&t.header);
                out_bytes += header.len() + t.body.len();
                out.push(Bytes::from(header));
                if !t.body.is_empty() {
                    out.push(t.body);
                }
            }
            while let Some(event) = session.poll_event() {
                on_event(event);
            }
            let wake = match session.poll_timeout() {
                Some(t) => start + Duration::from_millis(t.max(0) as u64),
                None if timer.is_elapsed() => idle(),
                None => wake_at,
            };
            if wake != wake_at {
                wake_at = wake;
                timer.as_mut().reset(wake);
            }
            let writing = out_bytes > 0;
            let accepting = outgoing.is_some();
            let next_message = async {
                match outgoing.as_mut() {
                    Some(rx) => rx.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                () = &mut stop => return Ok(ContactEnd::Stopped),
                message = next_message, if accepting => match message {
                    Some((priority, payload)) => {
                        session.send(priority, payload);
                    }
                    None => outgoing = None,
                },
                read = self.recv.read_chunk(MAX_FRAME, true) => match read {
                    Ok(Some(chunk)) => frames.push(session, chunk.bytes)?,
                    Ok(None) => return Ok(ContactEnd::Lost),
                    Err(quinn::ReadError::ConnectionLost(e)) => return lost(e),
                    Err(e) => return Err(e.into()),
                },
                written = self.send.write_chunks(&mut out), if writing => match written {
                    Ok(w) => {
                        out_bytes -= w.bytes;
                        out.drain(..w.chunks);
                    }
                    Err(quinn::WriteError::ConnectionLost(e)) => return lost(e),
                    Err(e) => return Err(e.into()),
                },
                () = &mut timer => {}
            }
        }
    }
}

/// Ends the contact quietly when the connection simply went away; a refusal or protocol close is an error.
fn lost(e: quinn::ConnectionError) -> Result<ContactEnd, LinkError> {
    match &e {
        quinn::ConnectionError::ApplicationClosed(c)
            if c.error_code != VarInt::from_u32(close_code::DONE) =>
        {
            Err(LinkError::Connection(e))
        }
        quinn::ConnectionError::ApplicationClosed(_)
        | quinn::ConnectionError::TimedOut
        | quinn::ConnectionError::Reset
        | quinn::ConnectionError::LocallyClosed => Ok(ContactEnd::Lost),
        _ => Err(LinkError::Connection(e)),
    }
}

/// The stream's framing (a 4-byte big-endian length, then a session frame), decoded incrementally: bytes of the
/// stream not yet handed to the session: pieces of quinn's receive buffers, never copied. Holds at
/// most one frame ([`MAX_FRAME`]) plus one read: a longer declared length is refused as soon as it is seen.
#[derive(Default)]
pub struct FrameDecoder {
    parts: std::collections::VecDeque<Bytes>,
    len: usize,
}

impl FrameDecoder {
    /// Adds received bytes and feeds every complete frame to the session.
    pub fn push(&mut self, session: &mut Session, bytes: Bytes) -> Result<(), LinkError> {
        self.len += bytes.len();
        self.parts.push_back(bytes);
        while self.len >= 4 {
            let mut prefix = [0u8; 4];
            self.peek(&mut prefix);
            let len = u32::from_be_bytes(prefix) as usize;
            if len > MAX_FRAME {
                return Err(LinkError::Protocol(format!(
                    "frame of {len} bytes exceeds {MAX_FRAME}"
                )));
            }
            if self.len - 4 < len {
                break;
            }
            self.take(4);
            let frame = self.take(len);
            let slices: Vec<&[u8]> = frame.iter().map(|b| &b[..]).collect();
            session.handle_frame_parts(&slices)?;
        }
        Ok(())
    }

    fn peek(&self, out: &mut [u8]) {
        let mut at = 0;
        for p in &self.parts {
            let n = (out.len() - at).min(p.len());
            out[at..at + n].copy_from_slice(&p[..n]);
            at += n;
            if at == out.len() {
                break;
            }
        }
    }

    /// Removes the first `n` bytes (n <= len), as shared slices.
    fn take(&mut self, mut n: usize) -> Vec<Bytes> {
        self.len -= n;
        let mut out = Vec::new();
        while n > 0 {
            let Some(front) = self.parts.front_mut() else {
                break;
            };
            if front.len() <= n {
                n -= front.len();
                if let Some(b) = self.parts.pop_front() {
                    out.push(b);
                }
            } else {
                out.push(front.split_to(n));
                n = 0;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::{Priority, SessionConfig};

    #[test]
    fn an_oversized_length_is_refused_before_buffering() {
        let mut s = Session::new(SessionConfig::default());
        let mut input = ((MAX_FRAME + 1) as u32).to_be_bytes().to_vec();
        input.extend_from_slice(&[0; 16]);
        let mut buf = FrameDecoder::default();
        assert!(matches!(
            buf.push(&mut s, Bytes::from(input)),
            Err(LinkError::Protocol(_))
        ));
    }

    #[test]
    fn partial_frames_wait_and_whole_ones_are_handled() {
        let mut tx = Session::new(SessionConfig::default());
        tx.handle_contact(true);
        tx.send(Priority::Telemetry, vec![7; 100]);
        let frame = tx.poll_transmit(0).expect("a frame");
        let mut input = (frame.len() as u32).to_be_bytes().to_vec();
        input.extend_from_slice(&frame);
        let mut rx = Session::new(SessionConfig::default());
        rx.handle_contact(true);
        // Byte by byte: nothing happens until the last byte, then the frame is handled once.
        let mut buf = FrameDecoder::default();
        for (i, b) in input.iter().enumerate() {
            assert!(buf.push(&mut rx, Bytes::copy_from_slice(&[*b])).is_ok());
            assert_eq!(rx.poll_event().is_some(), i == input.len() - 1);
        }
        assert_eq!(buf.len, 0);
        // A corrupt frame is an error that names the session's reason.
        let mut bad = input.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        let mut rx = Session::new(SessionConfig::default());
        rx.handle_contact(true);
        let mut buf = FrameDecoder::default();
        assert!(matches!(
            buf.push(&mut rx, Bytes::from(bad)),
            Err(LinkError::Frame(_))
        ));
    }
}
