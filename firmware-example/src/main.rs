//! Scores sensor vectors by their log density under a Masked Autoregressive Flow
//! (on a standard normal or a Gaussian-mixture base), or under a Gaussian mixture
//! alone (`L = 0`).
//!
//! At boot the firmware validates the weight blob in the MODEL flash region against
//! the shapes it was built for and refuses a corrupt or mismatched one. It then
//! reads a headered CSV of sensor vectors from the host (semihosting; the path is
//! the first argument), and writes `log_prob,anomaly` rows to standard output —
//! byte for byte what `maf-train score` writes for the same model and rows. A
//! summary (vectors, anomalies, instructions per inference, stack high-water mark)
//! goes to standard error.
//!
//! Exit status: 0 all rows scored, 2 some rows were bad input (reported on standard
//! error, no output row), 1 a fatal error (bad model, unreadable file, panic).

// No operating system, no std; cortex-m-rt provides the entry point.
#![no_std]
#![no_main]

use core::fmt::Write as _;

use cortex_m_rt::entry;
use firmware_example::shape::{C, D, H, K, L};
use firmware_example::{
    BaseName, Console, EXIT_BAD_ROWS, EXIT_FAILURE, EXIT_OK, HostFile, INSTRUCTIONS_PER_TICK,
    Ticks, eprintln, exit, model_region,
};
use maf_core::{Error, Maf};

/// Longest CSV line the parser accepts, in bytes.
const MAX_LINE: usize = 512;

#[entry]
fn main() -> ! {
    exit(run())
}

/// What was wrong with a row that could not be scored.
enum BadRow<'a> {
    /// The line is longer than [`MAX_LINE`].
    TooLong,
    /// The line is not UTF-8.
    NotText,
    /// Wrong number of cells.
    Columns(usize),
    /// A cell does not parse as a number.
    Unparsable(usize, &'a str),
    /// A cell is NaN or infinite.
    NotFinite(usize, &'a str),
    /// The model refused the vector (only non-finite inputs do, caught above).
    Model(Error),
}

fn run() -> u32 {
    let Some(peripherals) = cortex_m::Peripherals::take() else {
        return EXIT_FAILURE;
    };
    let ticks = Ticks::new(peripherals.SYST);

    // The model: validated in place in its flash region, never copied.
    let region = model_region();
    let maf = match Maf::<D, H, L, C, K>::from_region(region) {
        Ok(m) => m,
        Err(e) => {
            eprintln!(
                "error: no valid model in the MODEL flash region at {:#010x}: {e}",
                region.as_ptr() as usize
            );
            eprintln!(
                "       (this firmware was built for D={D} C={C} H={H} K={K} L={L}; \
                 flash a blob of these shapes, or rebuild with MAF_MODEL)"
            );
            eprintln!(
                "       (the base density, N(0, I) or a Gaussian mixture of any size, is read \
                 from the blob and needs no rebuild)"
            );
            return EXIT_FAILURE;
        }
    };
    eprintln!(
        "model: D={D} C={C} H={H} K={K} L={L}, base {}, {} bytes (format v{}) at {:#010x}, \
         threshold {:?}",
        BaseName(maf.base()),
        maf.view().blob_len(),
        maf.view().version(),
        region.as_ptr() as usize,
        maf.threshold()
    );

    // The input file: the first argument after the program name.
    let mut cmdline = [0u8; 256];
    let path = firmware_example::command_line(&mut cmdline)
        .and_then(|c| c.split(' ').filter(|a| !a.is_empty()).nth(1));
    let Some(path) = path else {
        eprintln!(
            "usage: firmware-example VECTORS.csv   (a headered CSV, {} columns)",
            D + C
        );
        return EXIT_FAILURE;
    };
    let Some(mut file) = HostFile::open(path) else {
        eprintln!("error: cannot open {path}");
        return EXIT_FAILURE;
    };
    let Some(mut out) = Console::stdout() else {
        return EXIT_FAILURE;
    };

    let mut lines = Lines::new();
    let mut line_no = 0usize;
    let mut scored = 0u32;
    let mut anomalies = 0u32;
    let mut bad = 0u32;
    let mut total_ticks = 0u64;
    let mut header_seen = false;
    while let Some(line) = lines.next(&mut file) {
        line_no += 1;
        let line = line.map(|l| l.strip_suffix(b"\r").unwrap_or(l));
        if !header_seen {
            header_seen = true;
            let Ok(Ok(header)) = line.map(core::str::from_utf8) else {
                eprintln!("error: {path}: line 1: header unreadable");
                return EXIT_FAILURE;
            };
            let columns = header.split(',').count();
            if columns != D + C {
                eprintln!(
                    "error: {path}: the header has {columns} columns, the model needs {} \
                     ({D} features{})",
                    D + C,
                    if C == 0 { "" } else { " then the context" }
                );
                return EXIT_FAILURE;
            }
            out.write_bytes(b"log_prob,anomaly\n");
            continue;
        }
        let mut x = [0.0f32; D];
        let mut c = [0.0f32; C];
        let result = match line {
            Err(()) => Err(BadRow::TooLong),
            Ok(l) if l.iter().all(u8::is_ascii_whitespace) => continue, // blank line
            Ok(l) => parse_row(l, &mut x, &mut c).and_then(|()| {
                let t0 = ticks.now();
                let lp = log_density(&maf, &x, &c);
                total_ticks += u64::from(Ticks::elapsed(t0, ticks.now()));
                match lp {
                    Ok(lp) => Ok((lp, maf.is_anomaly(lp))),
                    // Too far out for f32: the least likely vector there is.
                    Err(Error::Overflow) => Ok((f32::NEG_INFINITY, true)),
                    Err(e) => Err(BadRow::Model(e)),
                }
            }),
        };
        match result {
            Ok((lp, anomaly)) => {
                scored += 1;
                anomalies += u32::from(anomaly);
                let _ = writeln!(out, "{lp},{}", u8::from(anomaly));
            }
            Err(why) => {
                bad += 1;
                out.flush();
                report_bad_row(path, line_no, &why);
            }
        }
    }
    if !header_seen {
        eprintln!("error: {path}: empty file (a header line is required)");
        return EXIT_FAILURE;
    }
    out.flush();

    let per = if scored > 0 {
        total_ticks * INSTRUCTIONS_PER_TICK / u64::from(scored)
    } else {
        0
    };
    eprintln!(
        "summary: {scored} vectors scored, {anomalies} anomalies, {bad} bad rows; \
         {per} instructions per inference (SysTick x {INSTRUCTIONS_PER_TICK}, -icount shift=0); \
         stack high-water {} of {} bytes",
        firmware_example::stack_high_water(),
        firmware_example::stack_size()
    );
    if bad > 0 { EXIT_BAD_ROWS } else { EXIT_OK }
}

/// One inference, kept out of line so that its instructions can be counted exactly
/// (`-singlestep -d exec,nochain`, see README.md).
#[inline(never)]
fn log_density(maf: &Maf<'_, D, H, L, C, K>, x: &[f32; D], c: &[f32; C]) -> Result<f32, Error> {
    maf.log_prob(x, c)
}

/// Parses one data row: `D` feature cells, then `C` context cells.
fn parse_row<'a>(line: &'a [u8], x: &mut [f32; D], c: &mut [f32; C]) -> Result<(), BadRow<'a>> {
    let text = core::str::from_utf8(line).map_err(|_| BadRow::NotText)?;
    let cells = text.split(',').count();
    if cells != D + C {
        return Err(BadRow::Columns(cells));
    }
    for (i, (cell, slot)) in text
        .split(',')
        .zip(x.iter_mut().chain(c.iter_mut()))
        .enumerate()
    {
        let cell = cell.trim();
        // core's parser is correctly rounded, like std's: the same f32 as the host.
        let v: f32 = cell.parse().map_err(|_| BadRow::Unparsable(i, cell))?;
        if !v.is_finite() {
            return Err(BadRow::NotFinite(i, cell));
        }
        *slot = v;
    }
    Ok(())
}

fn report_bad_row(path: &str, line_no: usize, why: &BadRow<'_>) {
    let row = line_no - 1;
    match why {
        BadRow::TooLong => eprintln!(
            "bad input: {path}: line {line_no} (row {row}): longer than {MAX_LINE} bytes; not scored"
        ),
        BadRow::NotText => {
            eprintln!("bad input: {path}: line {line_no} (row {row}): not UTF-8 text; not scored")
        }
        BadRow::Columns(n) => eprintln!(
            "bad input: {path}: line {line_no} (row {row}): {n} cells, expected {}; not scored",
            D + C
        ),
        BadRow::Unparsable(i, cell) => eprintln!(
            "bad input: {path}: line {line_no} (row {row}), column {}: {cell:?} is not a number; not scored",
            i + 1
        ),
        BadRow::NotFinite(i, cell) => eprintln!(
            "bad input: {path}: line {line_no} (row {row}), column {}: {cell:?} is not finite; not scored",
            i + 1
        ),
        BadRow::Model(e) => {
            eprintln!("bad input: {path}: line {line_no} (row {row}): {e}; not scored")
        }
    }
}

/// Splits a host file into lines, reading it in chunks through semihosting.
struct Lines {
    chunk: [u8; 512],
    start: usize,
    end: usize,
    line: [u8; MAX_LINE],
    eof: bool,
}

impl Lines {
    fn new() -> Self {
        Self {
            chunk: [0; 512],
            start: 0,
            end: 0,
            line: [0; MAX_LINE],
            eof: false,
        }
    }

    /// The next line without its `\n`: `Err(())` if it is longer than [`MAX_LINE`]
    /// (the rest of it is skipped); `None` at the end of the file.
    fn next(&mut self, file: &mut HostFile) -> Option<Result<&[u8], ()>> {
        let mut len = 0usize;
        let mut too_long = false;
        loop {
            if self.start == self.end {
                if self.eof {
                    break;
                }
                self.end = file.read(&mut self.chunk);
                self.start = 0;
                if self.end == 0 {
                    self.eof = true;
                    break;
                }
            }
            let avail = &self.chunk[self.start..self.end];
            let (piece, found) = match avail.iter().position(|&b| b == b'\n') {
                Some(i) => (&avail[..i], true),
                None => (avail, false),
            };
            if len + piece.len() <= MAX_LINE {
                self.line[len..len + piece.len()].copy_from_slice(piece);
                len += piece.len();
            } else {
                too_long = true;
            }
            self.start += piece.len() + usize::from(found);
            if found {
                return Some(if too_long {
                    Err(())
                } else {
                    Ok(&self.line[..len])
                });
            }
        }
        // End of file: a last line without '\n', if any.
        if len == 0 && !too_long {
            return None;
        }
        Some(if too_long {
            Err(())
        } else {
            Ok(&self.line[..len])
        })
    }
}
