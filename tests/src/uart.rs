//! The host side of the UART firmware's frames (`firmware-example/src/bin/uart.rs`,
//! format in `firmware-example/README.md`): requests (`D + C` floats, a postcard
//! tuple, COBS-framed) and answers, and a serial link to the firmware under QEMU
//! (`-serial stdio` through the crate's runner, `MAF_SERIAL=stdio`).

use std::io::{BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use serde::Deserialize;
use serde::ser::{Serialize, SerializeTuple, Serializer};

/// What the device answers (the firmware's `Answer`, same variant order).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub enum Answer {
    /// A scored vector.
    Score {
        /// Log density, raw units.
        log_prob: f32,
        /// Below the model's threshold.
        anomaly: bool,
    },
    /// A refused frame.
    Refused(Reason),
    /// Boot: the model is valid; requests hold `features + context` floats.
    Ready {
        /// D.
        features: u16,
        /// C.
        context: u16,
    },
    /// The answer to a status request.
    Status {
        /// Frames scored since boot.
        scored: u32,
        /// Frames refused since boot.
        refused: u32,
        /// Stack high-water mark, bytes.
        stack: u32,
    },
}

/// Why a frame was refused (the firmware's `Reason`, same order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Reason {
    /// Not `4 * (D + C)` bytes.
    WrongLength,
    /// Not valid COBS.
    BadEncoding,
    /// NaN or infinite value.
    NotFinite,
    /// Longer than any request.
    TooLong,
    /// No valid model in the MODEL region.
    NoModel,
    /// Panic or HardFault (the device resets).
    Fault,
}

impl Reason {
    /// A short description for messages.
    pub fn describe(self) -> &'static str {
        match self {
            Reason::WrongLength => "wrong frame length",
            Reason::BadEncoding => "bad COBS encoding",
            Reason::NotFinite => "a value is NaN or infinite",
            Reason::TooLong => "frame longer than any request",
            Reason::NoModel => "no valid model on the device",
            Reason::Fault => "the device faulted and resets",
        }
    }
}

/// Floats serialized as a postcard tuple (no length prefix).
struct Floats<'a>(&'a [f32]);

impl Serialize for Floats<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut t = s.serialize_tuple(self.0.len())?;
        for v in self.0 {
            t.serialize_element(v)?;
        }
        t.end()
    }
}

/// The request frame for one vector: COBS(postcard(floats)) and the ending `0x00`.
pub fn request(values: &[f32]) -> Vec<u8> {
    postcard::to_stdvec_cobs(&Floats(values)).unwrap_or_else(|e| panic!("postcard: {e}"))
}

/// COBS-frames raw payload bytes (for malformed requests), with the ending `0x00`.
pub fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = cobs::encode_vec(payload);
    out.push(0);
    out
}

/// The UART firmware under QEMU, its UART0 on the child's stdin/stdout.
pub struct Link {
    child: Child,
    tx: ChildStdin,
    rx: mpsc::Receiver<Vec<u8>>,
}

impl Link {
    /// Starts `elf` on `machine` with `model` in the MODEL region, through
    /// `firmware-example/qemu-run.sh` (`MAF_SERIAL=stdio`).
    pub fn start(runner: &Path, elf: &Path, machine: &str, model: &Path) -> std::io::Result<Self> {
        let mut child = Command::new(runner)
            .arg(elf)
            .env("MAF_MODEL", model)
            .env("MAF_MACHINE", machine)
            .env("MAF_SERIAL", "stdio")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let tx = child
            .stdin
            .take()
            .ok_or_else(|| std::io::Error::other("no stdin"))?;
        let out = child
            .stdout
            .take()
            .ok_or_else(|| std::io::Error::other("no stdout"))?;
        let (send, rx) = mpsc::channel();
        thread::spawn(move || read_frames(out, send));
        Ok(Self { child, tx, rx })
    }

    /// Sends raw bytes.
    pub fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.tx.write_all(bytes)?;
        self.tx.flush()
    }

    /// The next answer, within `timeout`; `Err` with the raw bytes if they do not
    /// decode, or a message on timeout / end of the link.
    pub fn answer(&mut self, timeout: Duration) -> Result<Answer, String> {
        let mut bytes = self
            .rx
            .recv_timeout(timeout)
            .map_err(|e| format!("no answer from the device ({e})"))?;
        let raw = bytes.clone();
        postcard::from_bytes_cobs(&mut bytes)
            .map_err(|e| format!("undecodable answer {raw:02x?}: {e}"))
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Splits the device's output into frames at each `0x00` (the `0x00` dropped).
fn read_frames(out: ChildStdout, send: mpsc::Sender<Vec<u8>>) {
    let mut frame = Vec::new();
    for byte in BufReader::new(out).bytes() {
        let Ok(b) = byte else { return };
        if b == 0 {
            if send.send(std::mem::take(&mut frame)).is_err() {
                return;
            }
        } else {
            frame.push(b);
        }
    }
}
