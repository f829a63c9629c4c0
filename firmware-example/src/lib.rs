//! Board support shared by the firmware binaries: the model's compile-time shapes,
//! the model flash region, semihosting console / files / exit, cycle measurement
//! with SysTick, the stack high-water mark, and the panic and HardFault reports of
//! the semihosting binaries (both exit QEMU with a failure status instead of
//! hanging; each such binary installs them with [`semihosting_fault_handlers!`]).
//! The board part (shapes, machine, model region, stack high-water) uses no
//! semihosting, so the `uart` firmware links it too, with its own fault handlers.
//!
//! Binaries: `firmware-example` (`src/main.rs`, scores a CSV of sensor vectors),
//! `selftest` (`src/bin/selftest.rs`, maf-core's numerical checks on the target),
//! `bench` (`src/bin/bench.rs`, the reference shape against a dense baseline) and
//! `bench-model` (`src/bin/bench_model.rs`, the cost of the `MAF_MODEL` shapes with
//! any base).

// We are no_std: this runs on a Cortex-M4F with no operating system and no heap.
#![no_std]
// The runtime needs `unsafe` (linker symbols, semihosting traps); each use says why.
#![deny(unsafe_op_in_unsafe_fn)]

use core::fmt::{self, Write as _};
use core::panic::PanicInfo;

use cortex_m::peripheral::SYST;
use cortex_m::peripheral::syst::SystClkSource;
use cortex_m_rt::ExceptionFrame;
use cortex_m_semihosting::syscall;
use maf_core::{Base, Covariance};

/// The shapes of the model this firmware was built for (from `MAF_MODEL`, see
/// build.rs): `D`, `C`, `H`, `K`, `L` and a few derived numbers.
pub mod shape {
    include!(concat!(env!("OUT_DIR"), "/model_shape.rs"));
}

/// The machine this firmware was built for (`machines.txt`, see build.rs): QEMU
/// machine, CPU, memory map, SysTick clock, UART address.
pub mod machine {
    include!(concat!(env!("OUT_DIR"), "/machine.rs"));
}

/// Exit status for success.
pub const EXIT_OK: u32 = 0;
/// Exit status for a failure (bad model, unreadable input, failed check, panic).
pub const EXIT_FAILURE: u32 = 1;
/// Exit status when some input rows could not be scored (bad values), the others were.
pub const EXIT_BAD_ROWS: u32 = 2;

/// The MODEL flash region of `memory.x`, where the weight blob is flashed.
pub fn model_region() -> &'static [u8] {
    unsafe extern "C" {
        static _model_start: u8;
        static _model_end: u8;
    }
    // SAFETY: the linker script defines both symbols as the bounds of the MODEL
    // region, which is flash (read-only, always mapped, never written while the
    // program runs); the slice covers exactly that region.
    unsafe {
        let start = &raw const _model_start;
        let end = &raw const _model_end;
        let len = (end as usize).saturating_sub(start as usize);
        core::slice::from_raw_parts(start, len)
    }
}

// ---------------------------------------------------------------- semihosting

/// SYS_OPEN mode "r" (text read; semihosting hosts treat text and binary alike).
const MODE_READ: usize = 0;
/// SYS_OPEN mode "w" on `:tt`: the host's standard output.
const MODE_STDOUT: usize = 4;
/// SYS_OPEN mode "a" on `:tt`: the host's standard error.
const MODE_STDERR: usize = 8;
/// SYS_EXIT_EXTENDED: exit with a status code, not just success/failure.
const SYS_EXIT_EXTENDED: usize = 0x20;
/// ADP_Stopped_ApplicationExit.
const ADP_APPLICATION_EXIT: usize = 0x20026;

fn sys_open(path: &[u8], mode: usize) -> Option<usize> {
    // SYS_OPEN wants a NUL-terminated name plus its length without the NUL.
    let mut name = [0u8; 256];
    let n = path.len();
    if n >= name.len() {
        return None;
    }
    name[..n].copy_from_slice(path);
    // SAFETY: semihosting call with a pointer to a NUL-terminated buffer that lives
    // across the call, its length and a mode; it touches no other memory.
    let h = unsafe { syscall!(OPEN, name.as_ptr(), mode, n) };
    (h != usize::MAX).then_some(h)
}

fn sys_write(handle: usize, bytes: &[u8]) {
    if bytes.is_empty() {
        return;
    }
    // SAFETY: the host reads `bytes.len()` bytes from a live slice.
    unsafe {
        syscall!(WRITE, handle, bytes.as_ptr(), bytes.len());
    }
}

/// Ends the program (QEMU exits with `code`; on hardware with a debugger attached
/// the debugger sees the exit). Never returns.
pub fn exit(code: u32) -> ! {
    if code == EXIT_OK {
        cortex_m_semihosting::debug::exit(cortex_m_semihosting::debug::EXIT_SUCCESS);
    } else {
        let block = [ADP_APPLICATION_EXIT, code as usize];
        // SAFETY: SYS_EXIT_EXTENDED reads the two-word block, which lives across
        // the call.
        unsafe {
            syscall(SYS_EXIT_EXTENDED, &block);
        }
        // Hosts without the extended call: plain failure.
        cortex_m_semihosting::debug::exit(cortex_m_semihosting::debug::EXIT_FAILURE);
    }
    // No debugger to exit to: stop here.
    loop {
        cortex_m::asm::wfi();
    }
}

/// The semihosting command line (arguments joined by spaces, program name first)
/// copied into `buf`; `None` if the host has none. The runner (qemu-run.sh)
/// percent-encodes `%`, space and control bytes in each argument, so split on
/// spaces and [`percent_decode`] each word.
pub fn command_line(buf: &mut [u8]) -> Option<&str> {
    let mut block = [buf.as_mut_ptr() as usize, buf.len()];
    // SAFETY: SYS_GET_CMDLINE writes at most `buf.len()` bytes into `buf` and the
    // written length back into `block[1]`; both live across the call.
    let r = unsafe {
        cortex_m_semihosting::syscall1(
            cortex_m_semihosting::nr::GET_CMDLINE,
            block.as_mut_ptr() as usize,
        )
    };
    if r != 0 {
        return None;
    }
    let len = block[1].min(buf.len());
    core::str::from_utf8(buf.get(..len)?).ok()
}

/// Decodes `%XX` escapes (what qemu-run.sh writes for `%`, space and control
/// bytes, since QEMU joins the semihosting arguments with spaces) into `buf`;
/// `None` for a malformed escape, bytes that are not UTF-8 or a too small `buf`.
pub fn percent_decode<'b>(word: &str, buf: &'b mut [u8]) -> Option<&'b str> {
    let bytes = word.as_bytes();
    let (mut i, mut n) = (0, 0);
    while i < bytes.len() {
        let b = if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = core::str::from_utf8(hex).ok()?;
            i += 3;
            u8::from_str_radix(hex, 16).ok()?
        } else {
            i += 1;
            bytes[i - 1]
        };
        *buf.get_mut(n)? = b;
        n += 1;
    }
    core::str::from_utf8(&buf[..n]).ok()
}

/// A host file opened for reading through semihosting.
pub struct HostFile {
    handle: usize,
}

impl HostFile {
    /// Opens `path` (relative to the emulator's working directory) for reading.
    pub fn open(path: &str) -> Option<Self> {
        sys_open(path.as_bytes(), MODE_READ).map(|handle| Self { handle })
    }

    /// Reads up to `buf.len()` bytes; returns how many (0 at the end of the file).
    pub fn read(&mut self, buf: &mut [u8]) -> usize {
        // SAFETY: the host writes at most `buf.len()` bytes into `buf`.
        let not_read = unsafe { syscall!(READ, self.handle, buf.as_mut_ptr(), buf.len()) };
        buf.len().saturating_sub(not_read)
    }
}

impl Drop for HostFile {
    fn drop(&mut self) {
        // SAFETY: closes a handle this value owns.
        unsafe {
            syscall!(CLOSE, self.handle);
        }
    }
}

/// A buffered writer to the host's standard output or standard error.
pub struct Console {
    handle: usize,
    buf: [u8; 256],
    len: usize,
}

impl Console {
    /// The host's standard output (`None` without a semihosting host).
    pub fn stdout() -> Option<Self> {
        Self::open(MODE_STDOUT)
    }

    /// The host's standard error.
    pub fn stderr() -> Option<Self> {
        Self::open(MODE_STDERR)
    }

    fn open(mode: usize) -> Option<Self> {
        sys_open(b":tt", mode).map(|handle| Self {
            handle,
            buf: [0; 256],
            len: 0,
        })
    }

    /// Writes out what is buffered.
    pub fn flush(&mut self) {
        sys_write(self.handle, &self.buf[..self.len]);
        self.len = 0;
    }

    /// Appends bytes, flushing as the buffer fills.
    pub fn write_bytes(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.len == self.buf.len() {
                self.flush();
            }
            let n = bytes.len().min(self.buf.len() - self.len);
            self.buf[self.len..self.len + n].copy_from_slice(&bytes[..n]);
            self.len += n;
            bytes = &bytes[n..];
        }
    }
}

impl fmt::Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.write_bytes(s.as_bytes());
        Ok(())
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        self.flush();
    }
}

/// Prints to the host's standard error, unbuffered by the caller (one line at a time).
#[macro_export]
macro_rules! eprintln {
    ($($arg:tt)*) => {{
        if let Some(mut e) = $crate::Console::stderr() {
            let _ = core::fmt::Write::write_fmt(&mut e, format_args!($($arg)*));
            e.write_bytes(b"\n");
        }
    }};
}

// ------------------------------------------------------------------ measuring

/// SysTick's clock in MHz (25 on the MPS2 M3/M4 boards, 20 on the AN505, 32 on
/// the AN547): under QEMU `-icount shift=0` one instruction takes 1 ns, so one
/// tick is `1000 / SYSTICK_MHZ` instructions (40 at 25 MHz).
pub const SYSTICK_MHZ: u64 = machine::SYSTICK_HZ / 1_000_000;

/// Instructions in `ticks` SysTick ticks under QEMU `-icount shift=0` (1 ns per
/// instruction, SysTick at [`SYSTICK_MHZ`]).
pub const fn instructions(ticks: u64) -> u64 {
    ticks * 1_000_000_000 / machine::SYSTICK_HZ
}

/// Counts core-clock ticks with SysTick (free running, 24 bits, no interrupt).
pub struct Ticks {
    syst: SYST,
}

impl Ticks {
    /// Starts SysTick on the core clock with the largest reload value.
    pub fn new(mut syst: SYST) -> Self {
        syst.set_clock_source(SystClkSource::Core);
        syst.set_reload(0x00FF_FFFF);
        syst.clear_current();
        syst.enable_counter();
        Self { syst }
    }

    /// The current counter value (counts down).
    #[inline(always)]
    pub fn now(&self) -> u32 {
        let _ = &self.syst;
        SYST::get_current()
    }

    /// Ticks from `start` to `end` (both from [`Ticks::now`]); correct if less than
    /// 2^24 ticks (0.67 s at 25 MHz) passed.
    #[inline(always)]
    pub fn elapsed(start: u32, end: u32) -> u32 {
        start.wrapping_sub(end) & 0x00FF_FFFF
    }
}

/// Bytes of stack used so far: cortex-m-rt's `paint-stack` fills the stack with
/// `0xCCCC_CCCC` at reset; the lowest word that no longer holds it marks the
/// deepest the stack has been.
pub fn stack_high_water() -> usize {
    unsafe extern "C" {
        static _stack_start: u32;
        static _stack_end: u32;
    }
    let top = &raw const _stack_start as usize;
    let bottom = &raw const _stack_end as usize;
    let mut p = bottom;
    while p < top {
        // SAFETY: `p` is a 4-aligned address inside the RAM between the end of
        // .bss/.uninit and the top of the stack (linker symbols); reading it
        // volatile has no side effect.
        let v = unsafe { core::ptr::read_volatile(p as *const u32) };
        if v != cortex_m_rt::STACK_PAINT_VALUE {
            break;
        }
        p += 4;
    }
    top - p
}

/// Bytes of RAM between the end of the static data and the top of the stack.
pub fn stack_size() -> usize {
    unsafe extern "C" {
        static _stack_start: u32;
        static _stack_end: u32;
    }
    (&raw const _stack_start as usize).saturating_sub(&raw const _stack_end as usize)
}

/// Instructions of calls of `f`, one per item of `xs`: (mean from one timed loop
/// over all of them, min and max from per-call readings, ±40 instructions).
pub fn time_calls<T>(ticks: &Ticks, xs: &[T], f: impl Fn(&T) -> Option<f32>) -> (u64, u64, u64) {
    use core::hint::black_box;
    let t0 = ticks.now();
    for x in xs {
        black_box(f(black_box(x)));
    }
    let total = u64::from(Ticks::elapsed(t0, ticks.now()));
    let (mut min, mut max) = (u64::MAX, 0);
    for x in xs {
        let t0 = ticks.now();
        black_box(f(black_box(x)));
        let t = u64::from(Ticks::elapsed(t0, ticks.now()));
        min = min.min(t);
        max = max.max(t);
    }
    let per = instructions;
    (per(total) / xs.len().max(1) as u64, per(min), per(max))
}

/// What [`stack_used`] paints the stack with.
const PAINT_WORD: u32 = 0xA5C3_5A3C;

/// Bytes of stack one call of `f` touches below the caller's frame: `paint` bytes
/// just below the current stack pointer are painted, `f` runs, and the lowest word
/// no longer holding the paint marks its deepest frame.
#[inline(never)]
pub fn stack_used(paint: usize, f: &mut dyn FnMut()) -> usize {
    unsafe extern "C" {
        static _stack_end: u32;
    }
    let bottom = &raw const _stack_end as usize;
    let sp = cortex_m::register::msp::read() as usize;
    let top = sp & !3;
    let base = top.saturating_sub(paint).max(bottom.next_multiple_of(4));
    for p in (base..top).step_by(4) {
        // SAFETY: `p` is a 4-aligned word of the stack region (between the end of
        // the static data and the current stack pointer), which nothing uses: no
        // interrupt is enabled and the ARM procedure call standard has no red zone.
        unsafe { core::ptr::write_volatile(p as *mut u32, PAINT_WORD) };
    }
    f();
    let mut lowest = top;
    for p in (base..top).step_by(4) {
        // SAFETY: as above; reading the word has no side effect.
        if unsafe { core::ptr::read_volatile(p as *const u32) } != PAINT_WORD {
            lowest = p;
            break;
        }
    }
    top - lowest
}

/// A 64-bit LCG with Box–Muller normals: reproducible benchmark inputs.
pub struct Rng(pub u64);

impl Rng {
    /// Uniform in (0, 1].
    pub fn uniform(&mut self) -> f32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 40) as f32 + 1.0) / (1u64 << 24) as f32
    }

    /// A standard normal vector (one Box–Muller pair per two entries; an odd
    /// last entry takes the cosine of a fresh pair).
    pub fn normal<const N: usize>(&mut self) -> [f32; N] {
        let mut v = [0.0f32; N];
        for pair in v.chunks_mut(2) {
            let r = libm::sqrtf(-2.0 * libm::logf(self.uniform()));
            let t = 2.0 * core::f32::consts::PI * self.uniform();
            pair[0] = r * libm::cosf(t);
            if let Some(second) = pair.get_mut(1) {
                *second = r * libm::sinf(t);
            }
        }
        v
    }
}

// ----------------------------------------------------------------------- base

/// A model's base density for messages: `N(0, I)`, or `mixture of 16 Gaussians
/// (full covariance)`.
pub struct BaseName(pub Base);

impl fmt::Display for BaseName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Base::StandardNormal => f.write_str("N(0, I)"),
            Base::Mixture {
                components,
                covariance,
            } => write!(
                f,
                "mixture of {components} Gaussian{} ({} covariance)",
                if components == 1 { "" } else { "s" },
                covariance_name(covariance)
            ),
        }
    }
}

/// `full` or `diag`.
pub const fn covariance_name(c: Covariance) -> &'static str {
    match c {
        Covariance::Full => "full",
        Covariance::Diagonal => "diag",
    }
}

// --------------------------------------------------------------------- faults

/// What the semihosting binaries do on a panic: print it to the host's stderr and
/// exit QEMU with [`EXIT_FAILURE`] (instead of hanging). Installed by
/// [`semihosting_fault_handlers!`].
pub fn report_panic(info: &PanicInfo) -> ! {
    if let Some(mut e) = Console::stderr() {
        let _ = writeln!(e, "panic: {info}");
    }
    exit(EXIT_FAILURE)
}

/// What the semihosting binaries do on a HardFault: print the faulting frame to
/// the host's stderr and exit QEMU with [`EXIT_FAILURE`]. Installed by
/// [`semihosting_fault_handlers!`].
pub fn report_hard_fault(frame: &ExceptionFrame) -> ! {
    if let Some(mut e) = Console::stderr() {
        let _ = writeln!(e, "HardFault at pc={:#010x}: {frame:?}", frame.pc());
    }
    exit(EXIT_FAILURE)
}

/// Defines the panic handler and the HardFault handler of a binary that talks to
/// its host through semihosting ([`report_panic`], [`report_hard_fault`]).
///
/// The handlers live in each binary, not in this library, so that a binary with no
/// semihosting host (`uart`, which answers a fault on its UART) can use the board
/// code here and install its own.
#[macro_export]
macro_rules! semihosting_fault_handlers {
    () => {
        #[panic_handler]
        fn panic(info: &core::panic::PanicInfo) -> ! {
            $crate::report_panic(info)
        }

        #[cortex_m_rt::exception]
        unsafe fn HardFault(frame: &cortex_m_rt::ExceptionFrame) -> ! {
            $crate::report_hard_fault(frame)
        }
    };
}
