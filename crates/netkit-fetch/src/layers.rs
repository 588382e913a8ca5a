//! The layers a connection stacks below HTTP/1, as values: TLS (to a proxy
//! or to the origin) and a CONNECT tunnel. A [`Stack`] moves bytes through
//! them: transport bytes up to plaintext for HTTP, HTTP's bytes down to what
//! the transport sends. Every layer takes all it is given (the layer
//! contract), so the stack never drops or reorders bytes.

use netkit_http1::{Event, Limits, RequestKind, ResponseDecoder};
use netkit_tls::{ClientConfig, TlsSession};

use crate::Error;

/// A CONNECT tunnel through an HTTP proxy.
#[derive(Debug)]
pub struct Connect {
    decoder: ResponseDecoder,
    buf: Vec<u8>,
    open: bool,
    /// Bytes from above before the tunnel opened.
    pending: Vec<u8>,
    out: Vec<u8>,
}

impl Connect {
    /// Sends `CONNECT authority HTTP/1.1` with `Host` and any `extra`
    /// headers (`Proxy-Authorization`).
    pub fn new(authority: &str, extra: &[(&str, &[u8])]) -> Result<Self, Error> {
        let mut headers: Vec<(&str, &[u8])> = vec![("Host", authority.as_bytes())];
        headers.extend_from_slice(extra);
        let mut out = Vec::new();
        netkit_http1::encode_head(
            &mut out,
            "CONNECT",
            authority,
            &headers,
            netkit_http1::Framing::None,
        )?;
        Ok(Self {
            decoder: ResponseDecoder::new(RequestKind::Connect, Limits::default()),
            buf: Vec::new(),
            open: false,
            pending: Vec::new(),
            out,
        })
    }

    fn input(&mut self, bytes: &[u8], up: &mut Vec<u8>) -> Result<(), Error> {
        if self.open {
            up.extend_from_slice(bytes);
            return Ok(());
        }
        self.buf.extend_from_slice(bytes);
        let mut pos = 0;
        loop {
            let (n, ev) = self.decoder.decode(&self.buf[pos..])?;
            pos += n;
            match ev {
                None => break,
                Some(Event::Head(h)) if !(200..300).contains(&h.status()) => {
                    return Err(Error::Proxy(format!(
                        "CONNECT refused: {} {}",
                        h.status(),
                        h.reason()
                    )));
                }
                Some(Event::End) => {
                    self.open = true;
                    up.extend_from_slice(&self.buf[pos..]);
                    self.buf = Vec::new();
                    self.out.append(&mut self.pending);
                    return Ok(());
                }
                Some(_) => {}
            }
        }
        self.buf.drain(..pos);
        Ok(())
    }
}

/// One layer.
#[derive(Debug)]
pub enum Layer {
    /// A TLS client session; `pending` holds plaintext the session did not
    /// take yet (it takes 64 KiB before the handshake is done).
    Tls {
        /// The session.
        session: Box<TlsSession>,
        /// Plaintext waiting for the session.
        pending: Vec<u8>,
        /// Whether the handshake-done trace was given.
        announced: bool,
    },
    /// A CONNECT tunnel.
    Connect(Box<Connect>),
}

impl Layer {
    /// A TLS client layer to `name`.
    pub fn tls(config: &ClientConfig, name: &str) -> Result<Self, Error> {
        Ok(Self::Tls {
            session: Box::new(TlsSession::client(config, name)?),
            pending: Vec::new(),
            announced: false,
        })
    }

    fn ready(&self) -> bool {
        match self {
            Self::Tls { session, .. } => !session.is_handshaking(),
            Self::Connect(c) => c.open,
        }
    }

    fn input(&mut self, bytes: &[u8], up: &mut Vec<u8>) -> Result<(), Error> {
        match self {
            Self::Tls { session, .. } => {
                session.handle_input(bytes)?;
                while session
                    .read_plaintext_with(|p| up.extend_from_slice(p))
                    .is_some()
                {}
                if let Some(e) = session.error() {
                    return Err(Error::Tls(e.clone()));
                }
                while session.poll_event().is_some() {}
                Ok(())
            }
            Self::Connect(c) => c.input(bytes, up),
        }
    }

    fn write(&mut self, plain: &[u8]) -> Result<(), Error> {
        match self {
            Self::Tls {
                session, pending, ..
            } => {
                pending.extend_from_slice(plain);
                Self::push_tls(session, pending)
            }
            Self::Connect(c) => {
                if c.open {
                    c.out.extend_from_slice(plain);
                } else {
                    c.pending.extend_from_slice(plain);
                }
                Ok(())
            }
        }
    }

    fn push_tls(session: &mut TlsSession, pending: &mut Vec<u8>) -> Result<(), Error> {
        while !pending.is_empty() {
            let n = session.write(pending)?;
            if n == 0 {
                break;
            }
            pending.drain(..n);
        }
        Ok(())
    }

    fn take_transmit(&mut self, out: &mut Vec<u8>) -> Result<(), Error> {
        match self {
            Self::Tls {
                session, pending, ..
            } => {
                Self::push_tls(session, pending)?;
                session.drain_transmit(out);
            }
            Self::Connect(c) => out.append(&mut c.out),
        }
        Ok(())
    }

    fn eof(&mut self) -> Result<(), Error> {
        match self {
            Self::Tls { session, .. } => session.handle_eof().map_err(Error::Tls),
            Self::Connect(c) if !c.open => Err(Error::Proxy(
                "the proxy closed the connection during CONNECT".into(),
            )),
            Self::Connect(_) => Ok(()),
        }
    }
}

/// The layers of one connection, bottom (next to the transport) first.
#[derive(Debug, Default)]
pub struct Stack {
    layers: Vec<Layer>,
    /// Bytes for the transport.
    out: Vec<u8>,
}

impl Stack {
    /// A stack of `layers`, bottom first. What they send at once (a
    /// ClientHello, a CONNECT request) is queued for the transport.
    pub fn new(layers: Vec<Layer>) -> Result<Self, Error> {
        let mut s = Self {
            layers,
            out: Vec::new(),
        };
        s.flush()?;
        Ok(s)
    }

    /// Whether every layer is set up (handshakes done, tunnel open).
    #[must_use]
    pub fn ready(&self) -> bool {
        self.layers.iter().all(Layer::ready)
    }

    /// Trace lines for layers that became ready since the last call.
    pub fn announcements(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        for l in &mut self.layers {
            if let Layer::Tls {
                session, announced, ..
            } = l
            {
                if !*announced && !session.is_handshaking() {
                    *announced = true;
                    let v = session
                        .protocol_version()
                        .map_or_else(|| "TLS".to_owned(), |v| format!("{v:?}"));
                    let alpn = session
                        .alpn_protocol()
                        .map(|a| format!(", ALPN {}", String::from_utf8_lossy(a)))
                        .unwrap_or_default();
                    lines.push(format!("TLS handshake done: {v}{alpn}"));
                }
            }
        }
        lines
    }

    /// Transport bytes arrived: the plaintext for HTTP is appended to `app`.
    /// Returns whether that plaintext has ended (a TLS peer's close_notify).
    pub fn input(&mut self, bytes: &[u8], app: &mut Vec<u8>) -> Result<bool, Error> {
        let n = self.layers.len();
        let mut data = std::borrow::Cow::Borrowed(bytes);
        for (i, l) in self.layers.iter_mut().enumerate() {
            if i + 1 == n {
                // The top layer's plaintext goes straight to HTTP's buffer.
                l.input(&data, app)?;
            } else {
                let mut up = Vec::new();
                l.input(&data, &mut up)?;
                data = std::borrow::Cow::Owned(up);
            }
        }
        if n == 0 {
            app.extend_from_slice(bytes);
        }
        self.flush()?;
        Ok(self.layers.iter().any(|l| match l {
            Layer::Tls { session, .. } => session.peer_closed(),
            Layer::Connect(_) => false,
        }))
    }

    /// Whether the stack has no layer (plain HTTP over the transport).
    #[must_use]
    pub fn is_plain(&self) -> bool {
        self.layers.is_empty()
    }

    /// HTTP's bytes, to go down through every layer.
    pub fn write(&mut self, plain: &[u8]) -> Result<(), Error> {
        match self.layers.last_mut() {
            Some(top) => top.write(plain)?,
            None => self.out.extend_from_slice(plain),
        }
        self.flush()
    }

    /// Moves what each layer has to send into the layer below, top first.
    fn flush(&mut self) -> Result<(), Error> {
        let mut carry = Vec::new();
        for i in (0..self.layers.len()).rev() {
            if !carry.is_empty() {
                self.layers[i].write(&carry)?;
                carry.clear();
            }
            self.layers[i].take_transmit(&mut carry)?;
        }
        self.out.append(&mut carry);
        Ok(())
    }

    /// Bytes waiting for the transport.
    #[must_use]
    pub fn transmit(&self) -> &[u8] {
        &self.out
    }

    /// The transport took `n` bytes of [`transmit`](Self::transmit).
    pub fn handle_sent(&mut self, n: usize) {
        self.out.drain(..n.min(self.out.len()));
    }

    /// The transport reached EOF; the first layer that calls it an error
    /// (a TLS truncation, a tunnel that never opened) says so.
    pub fn eof(&mut self) -> Result<(), Error> {
        for l in &mut self.layers {
            l.eof()?;
        }
        Ok(())
    }
}
