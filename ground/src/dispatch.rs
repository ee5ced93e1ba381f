//! Dispatch: the ground's end of the node links, over the link's QUIC shell.
//!
//! A node dials the ground when its pass begins. The shell has already proven who it is (mutual TLS under the
//! constellation CA); dispatch then gives the contact that node's session, tells the core which station carries
//! it, hands every message the node delivers to the core, and feeds the session whatever the core has for the node
//! while the contact lasts. Sessions outlive contacts, so a transfer cut by a pass's end resumes at the next one;
//! a node that restarted names a new session in its hello and is given a fresh one (and the core re-sends what
//! went over the old one when the node's hello shows its new incarnation).
//!
//! What the core produces leaves it in order through one writer task: delivered results are committed to the store
//! first (retried until the store takes them), and only then do the messages behind them go to the nodes, so a
//! node is never told its result arrived before the result is durable.

use odc_link::quic::{self, ContactEnd};
use odc_link::session::{Event, Priority, Session, SessionConfig};
use odc_model::id::NodeId;
use odc_model::wire::{self, Envelope};
use std::collections::HashMap;
use std::sync::Mutex;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio::sync::oneshot;

/// Session limits on ground links: resend a chunk not acknowledged within ten seconds of wall time.
pub fn session_config() -> SessionConfig {
    SessionConfig {
        retransmit_ms: 10_000,
        ..SessionConfig::default()
    }
}

/// One node's end of the link, kept between contacts.
struct NodeLink {
    /// The session the node named in its last hello.
    session_id: u64,
    /// The session, or `None` while a contact holds it.
    session: Option<Session>,
    /// Messages for the node, queued while it is out of contact.
    tx: UnboundedSender<(Priority, bytes::Bytes)>,
    /// Their receiving end, or `None` while a contact holds it.
    rx: Option<UnboundedReceiver<(Priority, bytes::Bytes)>>,
    /// Ends the contact in progress (a node dialling again replaces it).
    stop: Option<oneshot::Sender<()>>,
    /// Contacts opened so far (which one holds the session).
    contact: u64,
}

impl NodeLink {
    fn new() -> NodeLink {
        let (tx, rx) = unbounded_channel();
        NodeLink {
            session_id: 0,
            session: Some(Session::new(session_config())),
            tx,
            rx: Some(rx),
            stop: None,
            contact: 0,
        }
    }
}

/// Every node's link, by node.
#[derive(Default)]
pub struct Links {
    nodes: Mutex<HashMap<NodeId, NodeLink>>,
}

/// What a contact borrows from its node's link, and gives back when it ends.
pub struct Lease {
    /// The node.
    pub node: NodeId,
    /// The session.
    pub session: Session,
    /// Messages for the node.
    pub rx: UnboundedReceiver<(Priority, bytes::Bytes)>,
    /// Ends the contact early.
    pub stop: oneshot::Receiver<()>,
    /// Which contact this is.
    pub contact: u64,
    /// Whether the node started a new session (it restarted).
    pub new_session: bool,
}

impl Links {
    /// Queues a message for a node; it goes out in the contact in progress or the next one.
    pub fn send(&self, node: &NodeId, envelope: &Envelope) {
        let Ok(bytes) = wire::encode(envelope) else {
            tracing::warn!(node = %node, "a message for the node does not encode; dropped");
            return;
        };
        let Ok(mut nodes) = self.nodes.lock() else {
            return;
        };
        let link = nodes.entry(node.clone()).or_insert_with(NodeLink::new);
        let _ = link
            .tx
            .send((Priority::from(envelope.message.class()), bytes.into()));
    }

    /// Lends a node's session to a new contact. A contact still holding it is told to stop first; `None` while it
    /// has not handed the session back yet (the caller waits a moment and asks again).
    fn lend(&self, node: &NodeId, session_id: u64) -> Option<Lease> {
        let mut nodes = self.nodes.lock().ok()?;
        let link = nodes.entry(node.clone()).or_insert_with(NodeLink::new);
        if let Some(stop) = link.stop.take() {
            let _ = stop.send(());
        }
        let (session, rx) = match (link.session.take(), link.rx.take()) {
            (Some(s), Some(r)) => (s, r),
            (s, r) => {
                link.session = s;
                link.rx = r;
                return None;
            }
        };
        let new_session = session_id != link.session_id;
        let session = if new_session {
            link.session_id = session_id;
            Session::new(session_config())
        } else {
            session
        };
        let (stop_tx, stop) = oneshot::channel();
        link.stop = Some(stop_tx);
        link.contact += 1;
        Some(Lease {
            node: node.clone(),
            session,
            rx,
            stop,
            contact: link.contact,
            new_session,
        })
    }

    /// Takes a lent session back when its contact ends.
    fn give_back(
        &self,
        node: &NodeId,
        contact: u64,
        session: Session,
        rx: UnboundedReceiver<(Priority, bytes::Bytes)>,
    ) {
        let Ok(mut nodes) = self.nodes.lock() else {
            return;
        };
        let link = nodes.entry(node.clone()).or_insert_with(NodeLink::new);
        if link.contact == contact {
            link.stop = None;
        }
        link.session = Some(session);
        link.rx = Some(rx);
    }

    /// Nodes with a contact in progress.
    pub fn in_contact(&self) -> usize {
        self.nodes
            .lock()
            .map(|n| n.values().filter(|l| l.stop.is_some()).count())
            .unwrap_or(0)
    }
}

/// What the ground service does with a node's contact: the parts of [`crate::api::Ground`] dispatch uses.
pub trait NodeSide: Send + Sync + 'static {
    /// The node links.
    fn links(&self) -> &Links;
    /// Whether the ground knows this node.
    fn knows(&self, node: &NodeId) -> bool;
    /// A node's contact began (through the station its pass is over) or ended; `restarted` when it named a new
    /// session.
    fn contact(&self, node: &NodeId, up: bool, restarted: bool);
    /// A node delivered a message.
    fn node_message(&self, node: &NodeId, envelope: Envelope);
}

/// Accepts node links on `endpoint` until `stop` resolves, serving each contact on its own task. `session_id`
/// names this ground process's sessions to the nodes (a new number tells them the ground restarted).
pub async fn accept_links<G: NodeSide>(
    ground: std::sync::Arc<G>,
    endpoint: quinn::Endpoint,
    session_id: u64,
    stop: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(stop);
    loop {
        let incoming = tokio::select! {
            () = &mut stop => break,
            i = endpoint.accept() => i,
        };
        let Some(incoming) = incoming else {
            break;
        };
        let ground = ground.clone();
        tokio::spawn(async move {
            match quic::accept_session(incoming, session_id).await {
                Ok(link) => serve_contact(ground, link).await,
                Err(e) => tracing::warn!(error = %e, "a node link was refused"),
            }
        });
    }
    endpoint.close(
        quinn::VarInt::from_u32(quic::close_code::DONE),
        b"ground stopping",
    );
}

async fn serve_contact<G: NodeSide>(ground: std::sync::Arc<G>, link: quic::Link) {
    let peer = link.peer().clone();
    let node = match NodeId::new(peer.id()) {
        Ok(n) if peer.role() == odc_link::Role::Node && ground.knows(&n) => n,
        _ => {
            tracing::warn!(peer = %peer.dns_name(), "a link from a peer that is not a known node; closed");
            link.connection().close(
                quinn::VarInt::from_u32(quic::close_code::IDENTITY),
                b"not a node of this constellation",
            );
            return;
        }
    };
    let mut lease = None;
    for _ in 0..200 {
        lease = ground.links().lend(&node, link.session_id());
        if lease.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let Some(Lease {
        mut session,
        mut rx,
        stop,
        contact,
        new_session,
        ..
    }) = lease
    else {
        tracing::warn!(node = %node, "the node's previous contact did not end; the new one is refused");
        return;
    };
    ground.contact(&node, true, new_session);
    tracing::info!(node = %node, contact, new_session, "contact begins");
    let side = ground.clone();
    let who = node.clone();
    let mut on_event = move |event: Event| {
        if let Event::Delivered { payload, .. } = event {
            match wire::decode(&payload) {
                Ok(envelope) => side.node_message(&who, envelope),
                Err(e) => {
                    tracing::warn!(node = %who, error = %e, "a message from the node does not decode")
                }
            }
        }
    };
    let stop = async {
        let _ = stop.await;
    };
    let end = link
        .run_interactive(&mut session, &mut on_event, &mut rx, stop)
        .await;
    match end {
        Ok(ContactEnd::Stopped) | Ok(ContactEnd::Lost) => {}
        Err(e) => tracing::warn!(node = %node, error = %e, "contact ended on an error"),
    }
    ground.links().give_back(&node, contact, session, rx);
    // A newer contact may already hold the node; only the last one to end says the node left.
    if ground.links().in_contact_with(&node).is_none() {
        ground.contact(&node, false, false);
    }
    tracing::info!(node = %node, contact, "contact ends");
}

impl Links {
    /// The contact in progress with a node, if any.
    pub fn in_contact_with(&self, node: &NodeId) -> Option<u64> {
        let nodes = self.nodes.lock().ok()?;
        nodes
            .get(node)
            .filter(|l| l.stop.is_some())
            .map(|l| l.contact)
    }
}
