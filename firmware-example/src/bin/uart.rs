//! `uart`: the product-shaped firmware. Sensor vectors arrive as postcard COBS
//! frames on UART0 (the CMSDK APB UART of the MPS2/MPS3 boards; QEMU's first
//! `-serial`), each is scored by its log density under the model in the MODEL
//! flash region, and the answer (log density and anomaly flag, or why the frame
//! was refused) leaves as a frame on the same UART.
//!
//! No semihosting, no `core::fmt`, no CSV, no float printing or parsing: the
//! frame format is in `firmware-example/README.md` ("The UART firmware"). Every
//! frame ended by a `0x00` gets exactly one answer, in order; a bad frame (wrong
//! length, bad COBS, non-finite value, too long) gets an error answer, never a
//! score. A panic or HardFault sends a `Fault` answer and resets the core.
//!
//! It uses the crate library's board code (shapes, machine, model region, stack
//! high-water mark) and none of its semihosting; its panic and HardFault handlers
//! are its own (they answer on the UART).

// No operating system, no std; cortex-m-rt provides the entry point.
#![no_std]
#![no_main]
// Registers are reached through raw pointers; each use says why it is sound.
#![deny(unsafe_op_in_unsafe_fn)]

use core::panic::PanicInfo;

use cortex_m_rt::{ExceptionFrame, entry, exception};
use heapless::Vec;
use maf_core::{Error, Maf};
use serde::Serialize;
use serde::de::{Deserialize, Deserializer, SeqAccess, Visitor};

use firmware_example::shape::{C, D, H, K, L};
use firmware_example::{machine, model_region, stack_high_water};

/// Floats in one request: the features, then the context.
const N: usize = D + C;
/// Payload bytes of a request: `N` little-endian `f32` (a postcard tuple).
const PAYLOAD: usize = 4 * N;
/// Longest COBS-encoded request (one overhead byte per 254 payload bytes, at
/// least one), without the `0x00` that ends it.
const ENCODED: usize = PAYLOAD + PAYLOAD / 254 + 1;
/// Longest answer frame, COBS overhead and the ending `0x00` included.
const ANSWER: usize = 16;

/// What the device sends (postcard: a varint variant index, then the fields).
#[derive(Serialize)]
enum Answer {
    /// A scored vector: log density (raw units) and `log_prob < threshold`.
    Score { log_prob: f32, anomaly: bool },
    /// A frame that was not scored, and why.
    Refused(Reason),
    /// At boot: the model is valid; frames must hold `features + context` floats.
    Ready { features: u16, context: u16 },
    /// The answer to a status request (a one-byte frame `0x53`): frames scored and
    /// refused since boot, stack high-water in bytes.
    Status {
        scored: u32,
        refused: u32,
        stack: u32,
    },
}

/// Why a frame was refused (postcard: one byte).
#[derive(Serialize, Clone, Copy)]
enum Reason {
    /// The decoded frame is not `4 * (D + C)` bytes (nor a status request).
    WrongLength,
    /// The bytes before the `0x00` are not valid COBS.
    BadEncoding,
    /// A value is NaN or infinite.
    NotFinite,
    /// Longer than any request (the rest up to the next `0x00` was dropped).
    TooLong,
    /// No valid model in the MODEL region (sent at boot and for every frame).
    NoModel,
    /// A panic or HardFault; the device resets after sending it.
    Fault,
}

/// `N` floats, deserialized as a postcard tuple (serde's arrays stop at 32).
struct Vector([f32; N]);

impl<'de> Deserialize<'de> for Vector {
    fn deserialize<De: Deserializer<'de>>(d: De) -> Result<Self, De::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Vector;
            fn expecting(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str("floats")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vector, A::Error> {
                let mut v = [0.0f32; N];
                for (i, slot) in v.iter_mut().enumerate() {
                    *slot = seq
                        .next_element()?
                        .ok_or_else(|| serde::de::Error::invalid_length(i, &self))?;
                }
                Ok(Vector(v))
            }
        }
        d.deserialize_tuple(N, V)
    }
}

// ----------------------------------------------------------------------- UART

/// The CMSDK APB UART (ARM DDI 0479): DATA, STATE, CTRL, INTSTATUS, BAUDDIV.
struct Uart {
    base: usize,
}

impl Uart {
    const DATA: usize = 0x00;
    const STATE: usize = 0x04;
    const CTRL: usize = 0x08;
    const BAUDDIV: usize = 0x10;
    const TX_FULL: u32 = 1 << 0;
    const RX_FULL: u32 = 1 << 1;

    /// UART0 of the machine, enabled for TX and RX at 115,200 baud (QEMU ignores
    /// the rate but wants a divider of at least 16).
    fn new() -> Self {
        let u = Self {
            base: machine::UART0,
        };
        let div = (machine::SYSTICK_HZ / 115_200) as u32;
        u.write(Self::BAUDDIV, div.max(16));
        u.write(Self::CTRL, 0b11);
        u
    }

    fn read(&self, reg: usize) -> u32 {
        // SAFETY: `base` is the UART0 block of this machine (machines.txt), a
        // device register always mapped; a volatile read of STATE or DATA has only
        // the device's documented effect (DATA pops the received byte).
        unsafe { core::ptr::read_volatile((self.base + reg) as *const u32) }
    }

    fn write(&self, reg: usize, v: u32) {
        // SAFETY: as in `read`; writing DATA, CTRL or BAUDDIV is the documented
        // way to send a byte or configure the UART, and touches no memory.
        unsafe { core::ptr::write_volatile((self.base + reg) as *mut u32, v) }
    }

    /// The next received byte (waits for one).
    fn receive(&self) -> u8 {
        while self.read(Self::STATE) & Self::RX_FULL == 0 {}
        self.read(Self::DATA) as u8
    }

    fn send(&self, bytes: &[u8]) {
        for &b in bytes {
            while self.read(Self::STATE) & Self::TX_FULL != 0 {}
            self.write(Self::DATA, u32::from(b));
        }
    }

    /// Sends `answer` as one COBS frame ending in `0x00`.
    ///
    /// postcard into a plain slice, then COBS: 1.7 KB less code than postcard's
    /// COBS flavor (`to_slice_cobs`), which encodes byte by byte, for the same bytes.
    fn answer(&self, answer: &Answer) {
        let mut raw = [0u8; ANSWER];
        let mut frame = [0u8; ANSWER + 2];
        if let Ok(raw) = postcard::to_slice(answer, &mut raw) {
            let n = cobs::encode(raw, &mut frame);
            frame[n] = 0;
            self.send(&frame[..=n]);
        }
    }
}

// ----------------------------------------------------------------------- main

#[entry]
fn main() -> ! {
    let uart = Uart::new();
    let region = model_region();
    let maf = Maf::<D, H, L, C, K>::from_region(region);
    match &maf {
        Ok(_) => uart.answer(&Answer::Ready {
            features: D as u16,
            context: C as u16,
        }),
        Err(_) => uart.answer(&Answer::Refused(Reason::NoModel)),
    }

    // One encoded frame, up to its 0x00; `overfull` once it outgrew the buffer.
    let mut frame: Vec<u8, ENCODED> = Vec::new();
    let mut overfull = false;
    let (mut scored, mut refused) = (0u32, 0u32);
    loop {
        let byte = uart.receive();
        if byte != 0 {
            if frame.push(byte).is_err() {
                overfull = true;
            }
            continue;
        }
        // A lone 0x00 (an empty frame) is ignored: hosts send one to resync.
        if frame.is_empty() && !overfull {
            continue;
        }
        let answer = match &maf {
            _ if overfull => Answer::Refused(Reason::TooLong),
            Err(_) => Answer::Refused(Reason::NoModel),
            Ok(maf) => match decode(&mut frame) {
                Ok(Request::Status) => Answer::Status {
                    scored,
                    refused,
                    stack: stack_high_water() as u32,
                },
                Ok(Request::Vector(v)) => score(maf, &v),
                Err(r) => Answer::Refused(r),
            },
        };
        match answer {
            Answer::Score { .. } => scored += 1,
            Answer::Refused(_) => refused += 1,
            _ => {}
        }
        uart.answer(&answer);
        frame.clear();
        overfull = false;
    }
}

/// What a frame asks for.
enum Request {
    /// Score this vector.
    Vector(Vector),
    /// Report the counters (a one-byte payload `0x53`, 'S').
    Status,
}

/// The frame's request: COBS-decoded in place, then exactly `4 * (D + C)` bytes
/// of postcard `f32`s (or the status byte).
fn decode(frame: &mut [u8]) -> Result<Request, Reason> {
    let len = cobs::decode_in_place(frame).map_err(|_| Reason::BadEncoding)?;
    let payload = &frame[..len];
    if payload == [0x53] {
        return Ok(Request::Status);
    }
    if len != PAYLOAD {
        return Err(Reason::WrongLength);
    }
    match postcard::take_from_bytes::<Vector>(payload) {
        Ok((v, [])) => Ok(Request::Vector(v)),
        _ => Err(Reason::WrongLength),
    }
}

fn score(maf: &Maf<'_, D, H, L, C, K>, v: &Vector) -> Answer {
    if v.0.iter().any(|x| !x.is_finite()) {
        return Answer::Refused(Reason::NotFinite);
    }
    let mut x = [0.0f32; D];
    let mut c = [0.0f32; C];
    x.copy_from_slice(&v.0[..D]);
    c.copy_from_slice(&v.0[D..]);
    match log_density(maf, &x, &c) {
        Ok(lp) => Answer::Score {
            log_prob: lp,
            anomaly: maf.is_anomaly(lp),
        },
        // Too far out for f32: the least likely vector there is (as the host).
        Err(Error::Overflow) => Answer::Score {
            log_prob: f32::NEG_INFINITY,
            anomaly: true,
        },
        Err(_) => Answer::Refused(Reason::NotFinite),
    }
}

/// One inference, out of line and called from one place (see README.md).
#[inline(never)]
fn log_density(maf: &Maf<'_, D, H, L, C, K>, x: &[f32; D], c: &[f32; C]) -> Result<f32, Error> {
    maf.log_prob(x, c)
}

// --------------------------------------------------------------------- faults

/// Sends `Fault` and resets the core: nothing else is safe after a panic.
fn fault() -> ! {
    let uart = Uart {
        base: machine::UART0,
    };
    uart.answer(&Answer::Refused(Reason::Fault));
    cortex_m::peripheral::SCB::sys_reset()
}

#[panic_handler]
fn panic(_: &PanicInfo) -> ! {
    fault()
}

#[exception]
unsafe fn HardFault(_: &ExceptionFrame) -> ! {
    fault()
}
