//! The handshake that opens every connection between an Apache child and a
//! daemon process. Both hold the group's secret; each proves it to the
//! other without sending it, so whoever ends up at the other end of a
//! socket learns nothing it could use on another connection:
//!
//! 1. The child sends `Hello` with a fresh random nonce.
//! 2. The daemon answers `Challenge`: a fresh nonce of its own and its
//!    proof. The answer is also how the child knows a live daemon of the
//!    group took the connection.
//! 3. The child checks that proof and only then sends its own (`Proof`),
//!    with its first `Request` right behind it. The daemon checks the
//!    child's proof before it reads a `Request`.
//!
//! A proof is HMAC-SHA256 keyed with the secret over this transcript:
//! ```text
//! label      u8 length, then "mod_wsgi-rs daemon proof" or "mod_wsgi-rs child proof"
//! version    u8, the protocol version
//! group      u32 big-endian length, then the group's name
//! nonces     the child's 32 bytes, then the daemon's 32 bytes
//! child pid  u32 big-endian: the Apache child's pid as the daemon reads it
//!            with SO_PEERCRED
//! ```
//! Every field has a fixed size or a length, so two different transcripts
//! never hash the same bytes. The label differs per direction, so a proof
//! cannot be sent back to the side that made it; fresh nonces make a proof
//! worthless on any other connection. The pid ties the daemon's proof to
//! the process that connected: a process that accepts a child's connection
//! and relays it to a real daemon gets a proof made for its own pid, which
//! the child refuses before it sends anything.
use std::fmt;

use hmac::Mac;

use crate::protocol::{Frame, NONCE_LEN, PROOF_LEN, PROTOCOL_VERSION, SECRET_LEN};

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// Which side makes a proof.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Daemon,
    Child,
}

impl Side {
    fn label(self) -> &'static [u8] {
        match self {
            Side::Daemon => b"mod_wsgi-rs daemon proof",
            Side::Child => b"mod_wsgi-rs child proof",
        }
    }
}

/// What both proofs of one connection cover.
pub struct Transcript<'a> {
    pub group: &'a str,
    pub child_nonce: &'a [u8; NONCE_LEN],
    pub daemon_nonce: &'a [u8; NONCE_LEN],
    pub child_pid: u32,
}

fn keyed(secret: &[u8; SECRET_LEN], side: Side, t: &Transcript) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes a key of any length");
    let label = side.label();
    mac.update(&[label.len() as u8]);
    mac.update(label);
    mac.update(&[PROTOCOL_VERSION]);
    mac.update(&(t.group.len() as u32).to_be_bytes());
    mac.update(t.group.as_bytes());
    mac.update(t.child_nonce);
    mac.update(t.daemon_nonce);
    mac.update(&t.child_pid.to_be_bytes());
    mac
}

/// `side`'s proof for the connection `t` describes.
pub fn prove(secret: &[u8; SECRET_LEN], side: Side, t: &Transcript) -> [u8; PROOF_LEN] {
    keyed(secret, side, t).finalize().into_bytes().into()
}

/// Whether `proof` is `side`'s proof for `t`, compared in constant time.
pub fn verify(secret: &[u8; SECRET_LEN], side: Side, t: &Transcript, proof: &[u8; PROOF_LEN]) -> bool {
    keyed(secret, side, t).verify_slice(proof).is_ok()
}

/// Fresh random bytes from the kernel.
fn fresh_nonce() -> Result<[u8; NONCE_LEN], HandshakeError> {
    let mut nonce = [0u8; NONCE_LEN];
    getrandom::fill(&mut nonce).map_err(|e| HandshakeError::Random(e.to_string()))?;
    Ok(nonce)
}

/// Why a handshake failed.
#[derive(Debug)]
pub enum HandshakeError {
    /// The peer speaks another protocol version.
    Version(u8),
    /// The peer's proof is not the one the group's secret gives: it does not
    /// know the secret, or it is relaying another connection.
    WrongProof,
    /// The peer sent this kind of frame where a handshake frame belongs.
    Unexpected(&'static str),
    /// No random bytes for a nonce.
    Random(String),
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandshakeError::Version(v) => write!(f, "it speaks protocol version {v}, not {PROTOCOL_VERSION}"),
            HandshakeError::WrongProof => f.write_str("its proof does not match the group's secret"),
            HandshakeError::Unexpected(kind) => write!(f, "it sent a {kind} frame instead of completing the handshake"),
            HandshakeError::Random(e) => write!(f, "no random bytes for a nonce: {e}"),
        }
    }
}

impl std::error::Error for HandshakeError {}

/// The Apache child's half of one connection's handshake.
pub struct ChildHandshake {
    nonce: [u8; NONCE_LEN],
    pid: u32,
}

impl fmt::Debug for ChildHandshake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChildHandshake {{ pid: {}, nonce: <redacted> }}", self.pid)
    }
}

impl ChildHandshake {
    /// `pid` is the child's own, which the daemon sees with SO_PEERCRED.
    pub fn new(pid: u32) -> Result<Self, HandshakeError> {
        Ok(ChildHandshake { nonce: fresh_nonce()?, pid })
    }

    /// The frame that opens the connection.
    pub fn hello(&self) -> Frame {
        Frame::Hello { version: PROTOCOL_VERSION, nonce: self.nonce }
    }

    /// Checks the daemon's answer to Hello; on success returns the Proof
    /// frame to send before any request.
    pub fn answer(&self, secret: &[u8; SECRET_LEN], group: &str, answer: Frame) -> Result<Frame, HandshakeError> {
        let Frame::Challenge { version, nonce, proof } = answer else {
            return Err(HandshakeError::Unexpected(answer.kind_name()));
        };
        if version != PROTOCOL_VERSION {
            return Err(HandshakeError::Version(version));
        }
        let t = Transcript { group, child_nonce: &self.nonce, daemon_nonce: &nonce, child_pid: self.pid };
        if !verify(secret, Side::Daemon, &t, &proof) {
            return Err(HandshakeError::WrongProof);
        }
        Ok(Frame::Proof { proof: prove(secret, Side::Child, &t) })
    }
}

/// The daemon's half of one connection's handshake.
#[derive(Default)]
pub enum DaemonHandshake {
    #[default]
    AwaitingHello,
    AwaitingProof {
        child_nonce: [u8; NONCE_LEN],
        daemon_nonce: [u8; NONCE_LEN],
    },
    Done,
}

impl fmt::Debug for DaemonHandshake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DaemonHandshake::AwaitingHello => "AwaitingHello",
            DaemonHandshake::AwaitingProof { .. } => "AwaitingProof { nonces: <redacted> }",
            DaemonHandshake::Done => "Done",
        })
    }
}

impl DaemonHandshake {
    /// Takes the child's next frame. `Ok(Some(frame))`: send it and wait for
    /// the next; `Ok(None)`: the child is authenticated. `child_pid` is the
    /// peer's pid from SO_PEERCRED.
    pub fn step(&mut self, secret: &[u8; SECRET_LEN], group: &str, child_pid: u32, frame: Frame) -> Result<Option<Frame>, HandshakeError> {
        match (&*self, frame) {
            (DaemonHandshake::AwaitingHello, Frame::Hello { version, nonce: child_nonce }) => {
                if version != PROTOCOL_VERSION {
                    return Err(HandshakeError::Version(version));
                }
                let daemon_nonce = fresh_nonce()?;
                let t = Transcript { group, child_nonce: &child_nonce, daemon_nonce: &daemon_nonce, child_pid };
                let proof = prove(secret, Side::Daemon, &t);
                *self = DaemonHandshake::AwaitingProof { child_nonce, daemon_nonce };
                Ok(Some(Frame::Challenge { version: PROTOCOL_VERSION, nonce: daemon_nonce, proof }))
            }
            (DaemonHandshake::AwaitingProof { child_nonce, daemon_nonce }, Frame::Proof { proof }) => {
                let t = Transcript { group, child_nonce, daemon_nonce, child_pid };
                if !verify(secret, Side::Child, &t, &proof) {
                    return Err(HandshakeError::WrongProof);
                }
                *self = DaemonHandshake::Done;
                Ok(None)
            }
            (_, frame) => Err(HandshakeError::Unexpected(frame.kind_name())),
        }
    }

    pub fn is_done(&self) -> bool {
        matches!(self, DaemonHandshake::Done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{read_frame, write_frame, Limits, RequestHead};

    const SECRET: [u8; SECRET_LEN] = [0x5a; SECRET_LEN];
    const GROUP: &str = "example";
    const PID: u32 = 4242;

    /// Runs a handshake between a child that holds `child_secret` and
    /// connects as `child_pid` and a daemon that holds `daemon_secret` and
    /// sees `seen_pid`, passing every frame through the wire encoding.
    fn run(child_secret: &[u8; SECRET_LEN], daemon_secret: &[u8; SECRET_LEN], child_pid: u32, seen_pid: u32) -> Result<(), HandshakeError> {
        let child = ChildHandshake::new(child_pid).unwrap();
        let mut daemon = DaemonHandshake::default();
        let challenge = daemon.step(daemon_secret, GROUP, seen_pid, wire(child.hello()))?.expect("a Challenge");
        let proof = child.answer(child_secret, GROUP, wire(challenge))?;
        assert_eq!(daemon.step(daemon_secret, GROUP, seen_pid, wire(proof))?, None);
        assert!(daemon.is_done());
        Ok(())
    }

    fn wire(frame: Frame) -> Frame {
        let mut bytes = Vec::new();
        write_frame(&mut bytes, &frame).unwrap();
        read_frame(&mut &bytes[..], &Limits::handshake()).unwrap()
    }

    #[test]
    fn both_sides_with_the_secret_agree() {
        run(&SECRET, &SECRET, PID, PID).unwrap();
    }

    #[test]
    fn a_daemon_without_the_secret_gets_no_proof_from_the_child() {
        assert!(matches!(run(&SECRET, &[0x5b; SECRET_LEN], PID, PID), Err(HandshakeError::WrongProof)));
    }

    #[test]
    fn a_child_without_the_secret_is_refused_by_the_daemon() {
        // A child that skips checking the daemon (an attacker) and proves
        // with a secret of its own.
        let child = ChildHandshake::new(PID).unwrap();
        let mut daemon = DaemonHandshake::default();
        let Some(Frame::Challenge { nonce, .. }) = daemon.step(&SECRET, GROUP, PID, child.hello()).unwrap() else { panic!() };
        let t = Transcript { group: GROUP, child_nonce: &child.nonce, daemon_nonce: &nonce, child_pid: PID };
        let forged = Frame::Proof { proof: prove(&[1; SECRET_LEN], Side::Child, &t) };
        assert!(matches!(daemon.step(&SECRET, GROUP, PID, forged), Err(HandshakeError::WrongProof)));
        assert!(!daemon.is_done());
    }

    #[test]
    fn a_relayed_connection_is_refused() {
        // The daemon sees the relaying process's pid, not the child's.
        assert!(matches!(run(&SECRET, &SECRET, PID, PID + 1), Err(HandshakeError::WrongProof)));
    }

    #[test]
    fn proofs_are_bound_to_the_group_direction_and_nonces() {
        let (child_nonce, daemon_nonce) = ([1u8; NONCE_LEN], [2u8; NONCE_LEN]);
        let t = Transcript { group: GROUP, child_nonce: &child_nonce, daemon_nonce: &daemon_nonce, child_pid: PID };
        let proof = prove(&SECRET, Side::Daemon, &t);
        assert!(verify(&SECRET, Side::Daemon, &t, &proof));
        // The other direction's label: a proof cannot be reflected.
        assert!(!verify(&SECRET, Side::Child, &t, &proof));
        let other_group = Transcript { group: "other", ..t };
        assert!(!verify(&SECRET, Side::Daemon, &other_group, &proof));
        let swapped = Transcript { group: GROUP, child_nonce: &daemon_nonce, daemon_nonce: &child_nonce, child_pid: PID };
        assert!(!verify(&SECRET, Side::Daemon, &swapped, &proof));
        // Any changed byte of a nonce or bit of the proof is refused.
        for i in 0..NONCE_LEN {
            let mut n = child_nonce;
            n[i] ^= 1;
            assert!(!verify(&SECRET, Side::Daemon, &Transcript { child_nonce: &n, ..t }, &proof));
            let mut n = daemon_nonce;
            n[i] ^= 0x80;
            assert!(!verify(&SECRET, Side::Daemon, &Transcript { daemon_nonce: &n, ..t }, &proof));
        }
        for bit in 0..PROOF_LEN * 8 {
            let mut p = proof;
            p[bit / 8] ^= 1 << (bit % 8);
            assert!(!verify(&SECRET, Side::Daemon, &t, &p), "bit {bit}");
        }
    }

    #[test]
    fn a_proof_from_one_connection_does_not_open_another() {
        // Replay the child's Proof from a first connection on a second one:
        // the daemon's nonce differs.
        let child = ChildHandshake::new(PID).unwrap();
        let mut first = DaemonHandshake::default();
        let challenge = first.step(&SECRET, GROUP, PID, child.hello()).unwrap().unwrap();
        let proof = child.answer(&SECRET, GROUP, challenge.clone()).unwrap();
        let mut second = DaemonHandshake::default();
        second.step(&SECRET, GROUP, PID, child.hello()).unwrap().unwrap();
        assert!(matches!(second.step(&SECRET, GROUP, PID, proof), Err(HandshakeError::WrongProof)));
        // Replay the daemon's Challenge to a new child: its nonce differs.
        let other = ChildHandshake::new(PID).unwrap();
        assert!(matches!(other.answer(&SECRET, GROUP, challenge), Err(HandshakeError::WrongProof)));
    }

    #[test]
    fn tampered_challenges_are_refused() {
        let child = ChildHandshake::new(PID).unwrap();
        let mut daemon = DaemonHandshake::default();
        let Some(Frame::Challenge { version, nonce, proof }) = daemon.step(&SECRET, GROUP, PID, child.hello()).unwrap() else { panic!() };
        let mut bad_nonce = nonce;
        bad_nonce[0] ^= 1;
        let mut bad_proof = proof;
        bad_proof[31] ^= 1;
        for tampered in [Frame::Challenge { version, nonce: bad_nonce, proof }, Frame::Challenge { version, nonce, proof: bad_proof }] {
            assert!(matches!(child.answer(&SECRET, GROUP, tampered), Err(HandshakeError::WrongProof)));
        }
        assert!(matches!(child.answer(&SECRET, GROUP, Frame::Challenge { version: 1, nonce, proof }), Err(HandshakeError::Version(1))));
        assert!(matches!(child.answer(&SECRET, GROUP, Frame::End), Err(HandshakeError::Unexpected("End"))));
        assert!(child.answer(&SECRET, GROUP, Frame::Challenge { version, nonce, proof }).is_ok());
    }

    #[test]
    fn the_daemon_takes_only_the_frames_of_the_handshake_in_order() {
        let request = Frame::Request(RequestHead {
            script: "/app.wsgi".into(),
            script_mtime: 0,
            callable: "application".into(),
            reloading: false,
            application_group: String::new(),
            request_start_us: 0,
            environ: Vec::new(),
        });
        let child = ChildHandshake::new(PID).unwrap();
        for early in [request.clone(), Frame::Proof { proof: [0; PROOF_LEN] }, Frame::BodyEnd] {
            let mut daemon = DaemonHandshake::default();
            assert!(matches!(daemon.step(&SECRET, GROUP, PID, early), Err(HandshakeError::Unexpected(_))));
        }
        let mut daemon = DaemonHandshake::default();
        assert!(matches!(daemon.step(&SECRET, GROUP, PID, Frame::Hello { version: 1, nonce: [0; NONCE_LEN] }), Err(HandshakeError::Version(1))));
        daemon.step(&SECRET, GROUP, PID, child.hello()).unwrap();
        assert!(matches!(daemon.step(&SECRET, GROUP, PID, child.hello()), Err(HandshakeError::Unexpected("Hello"))));
        assert!(matches!(daemon.step(&SECRET, GROUP, PID, request), Err(HandshakeError::Unexpected("Request"))));
    }

    #[test]
    fn the_secret_never_goes_on_the_wire() {
        let child = ChildHandshake::new(PID).unwrap();
        let mut daemon = DaemonHandshake::default();
        let hello = child.hello();
        let challenge = daemon.step(&SECRET, GROUP, PID, hello.clone()).unwrap().unwrap();
        let proof = child.answer(&SECRET, GROUP, challenge.clone()).unwrap();
        for frame in [hello, challenge, proof] {
            let mut bytes = Vec::new();
            write_frame(&mut bytes, &frame).unwrap();
            assert!(!bytes.windows(8).any(|w| w == &SECRET[..8]), "{frame:?}");
        }
    }

    #[test]
    fn nonces_are_fresh() {
        let a = ChildHandshake::new(PID).unwrap();
        let b = ChildHandshake::new(PID).unwrap();
        assert_ne!(a.nonce, b.nonce);
        assert_ne!(a.nonce, [0; NONCE_LEN]);
    }

    #[test]
    fn the_transcript_is_the_documented_one() {
        // HMAC-SHA256 of the transcript described in the module doc,
        // computed independently (Python's hmac module).
        let t = Transcript { group: "g", child_nonce: &[1; NONCE_LEN], daemon_nonce: &[2; NONCE_LEN], child_pid: 0x0102_0304 };
        let hex = |p: [u8; PROOF_LEN]| p.iter().map(|b| format!("{b:02x}")).collect::<String>();
        assert_eq!(hex(prove(&[7; SECRET_LEN], Side::Daemon, &t)), DAEMON_KAT);
        assert_eq!(hex(prove(&[7; SECRET_LEN], Side::Child, &t)), CHILD_KAT);
    }

    const DAEMON_KAT: &str = "5aad97300a0b620903f3547c0e67fab32f215eb525043611aa1d321e553279ea";
    const CHILD_KAT: &str = "a53d6f8bc18e52789a74b3c10111f04b37d39572610c6f0c0102b1488b7a9228";

    #[test]
    fn debug_hides_nonces() {
        let child = ChildHandshake::new(PID).unwrap();
        let mut daemon = DaemonHandshake::default();
        daemon.step(&SECRET, GROUP, PID, child.hello()).unwrap();
        for shown in [format!("{child:?}"), format!("{daemon:?}")] {
            assert!(shown.contains("redacted") && !shown.contains('['), "{shown}");
        }
    }
}
