//! Scores sensor vectors by their log density under a Masked Autoregressive Flow
//! (on a standard normal or a Gaussian-mixture base), or under a Gaussian mixture
//! alone (`L = 0`).
//!
//! At boot the firmware validates the weight blob in the MODEL flash region against
//! the shapes it was built for and refuses a corrupt or mismatched one. It then
//! reads a headered CSV of sensor vectors from the host (semihosting; the path is
//! the first argument), parsed with `csv-core` (the engine of the host's `csv`
//! crate: RFC 4180 quotes, CRLF or LF, blank lines skipped, a UTF-8 BOM stripped,
//! cells trimmed), matches its header to the model's column names **by name**
//! (reordering; a missing, unknown, repeated or empty name is refused), and writes
//! `log_prob,anomaly` rows to standard output — byte for byte what `maf-train
//! score` writes for the same model and rows. A summary (vectors, anomalies,
//! instructions per inference, stack high-water mark) goes to standard error.
//!
//! **Windowed alarms.** For a model fitted with `maf-train fit --window N` (N > 1)
//! the rows are `log_prob,anomaly,window_score,alarm`: `maf-core`'s [`Detector`]
//! over the last N vectors against the model's window threshold, as `maf-train
//! score` writes them (an empty window score and alarm 0 during the warm-up).
//! A second argument `calibrate=M` starts with a **calibration phase**: the first
//! M vectors are taken as healthy site data (no alarms, alarm 0), `maf-core`'s
//! [`Calibrator`] re-baselines the window threshold on them (as `maf-train
//! recalibrate --rows M` does) and the detector goes on with the new threshold;
//! the window columns are then written for any N.
//!
//! Exit status: 0 all rows scored, 2 some rows were bad input (reported on standard
//! error, no output row), 1 a fatal error (bad model, unreadable file or header,
//! panic). The runner's own failures are 125 (bad invocation) and 127 (no QEMU).

// No operating system, no std; cortex-m-rt provides the entry point.
#![no_std]
#![no_main]

use core::fmt::Write as _;

use cortex_m_rt::entry;
use firmware_example::shape::{C, D, H, K, L};
use firmware_example::{
    BaseName, Console, EXIT_BAD_ROWS, EXIT_FAILURE, EXIT_OK, HostFile, SYSTICK_MHZ, Ticks,
    eprintln, exit, instructions, machine, model_region,
};
use maf_core::{Calibrator, Decision, Detector, Error, Maf};

use firmware_example::shape::WINDOW;

/// Most window scores a calibration phase keeps (`4 x` this bytes of stack):
/// `calibrate=M` takes at most this many windows, `M <= CALIBRATION_WINDOWS +
/// WINDOW - 1` vectors.
const CALIBRATION_WINDOWS: usize = 512;

/// Most bytes of cell content (quotes and delimiters removed) in one record.
const MAX_RECORD: usize = 1024;

/// Most cells in one record: the model's columns; a longer record is a bad row
/// (or, for the header, a refused file).
const MAX_FIELDS: usize = D + C;

// Panics and HardFaults print to the host and exit QEMU with a failure status.
firmware_example::semihosting_fault_handlers!();

#[entry]
fn main() -> ! {
    exit(run())
}

/// What was wrong with a row that could not be scored.
enum BadRow<'a> {
    /// The record is longer than [`MAX_RECORD`].
    TooLong,
    /// The record is not UTF-8.
    NotText,
    /// Wrong number of cells (`usize::MAX`: more than the model has columns).
    Columns(usize),
    /// A cell does not parse as a number (column 0-based in the file).
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
         threshold {:?}; machine {} ({}, {})",
        BaseName(maf.base()),
        maf.view().blob_len(),
        maf.view().version(),
        region.as_ptr() as usize,
        maf.threshold(),
        machine::MACHINE,
        machine::CPU,
        machine::MEMORY,
    );

    // The input file: the first argument after the program name (qemu-run.sh
    // percent-encodes spaces, so a path may contain them).
    let mut cmdline = [0u8; 512];
    let mut name = [0u8; 256];
    let line = firmware_example::command_line(&mut cmdline);
    let word = line.and_then(|c| c.split(' ').filter(|a| !a.is_empty()).nth(1));
    let calibrate = match line.and_then(|c| c.split(' ').filter(|a| !a.is_empty()).nth(2)) {
        None => 0,
        Some(a) => match a
            .strip_prefix("calibrate=")
            .and_then(|m| m.parse::<usize>().ok())
        {
            Some(m) if (WINDOW..CALIBRATION_WINDOWS + WINDOW).contains(&m) => m,
            _ => {
                eprintln!(
                    "error: the second argument {a:?} is not calibrate=M with M in {WINDOW}..={}",
                    CALIBRATION_WINDOWS + WINDOW - 1
                );
                return EXIT_FAILURE;
            }
        },
    };
    let Some(word) = word else {
        eprintln!(
            "usage: firmware-example VECTORS.csv   (a headered CSV with the model's {} columns)",
            D + C
        );
        return EXIT_FAILURE;
    };
    let Some(path) = firmware_example::percent_decode(word, &mut name) else {
        eprintln!(
            "error: the argument {word:?} is not a percent-encoded UTF-8 path of at most 255 bytes"
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

    let mut csv = Csv::new();
    // The header: the model's columns by name, in any order.
    let names = Names::of(&maf);
    let order = match csv.next(&mut file) {
        None => {
            eprintln!("error: {path}: empty file (a header line is required)");
            return EXIT_FAILURE;
        }
        Some((_, rec)) => match rec.and_then(|r| column_order(&names, &r)) {
            Ok(order) => order,
            Err(why) => {
                eprintln!("error: {path}: header: {why}");
                if names.len > 0 {
                    eprintln!("       (the model's columns, features then context: {names})");
                }
                return EXIT_FAILURE;
            }
        },
    };
    // The detector: the model's window threshold (per vector: the anomaly
    // threshold of a model without one).
    let window = maf.header().window;
    let threshold = window
        .threshold
        .or(if WINDOW == 1 { maf.threshold() } else { None });
    let windowed = WINDOW > 1 || calibrate > 0;
    let mut detector = match threshold.map(Detector::<WINDOW>::new) {
        Some(Ok(d)) => d,
        _ if !windowed => match Detector::<WINDOW>::new(f32::MIN) {
            Ok(d) => d,
            Err(_) => return EXIT_FAILURE,
        },
        _ => {
            eprintln!(
                "error: the model has a window of {WINDOW} vectors but no window threshold \
                 (recalibrate it with maf-train recalibrate --window {WINDOW})"
            );
            return EXIT_FAILURE;
        }
    };
    let mut calibrator = if calibrate > 0 {
        match Calibrator::<WINDOW, CALIBRATION_WINDOWS>::new() {
            Ok(c) => Some(c),
            Err(_) => return EXIT_FAILURE,
        }
    } else {
        None
    };
    out.write_bytes(if windowed {
        b"log_prob,anomaly,window_score,alarm\n".as_slice()
    } else {
        b"log_prob,anomaly\n".as_slice()
    });
    let mut alarms = 0u32;
    let mut detector_ticks = 0u64;

    let mut row = 0usize;
    let mut scored = 0u32;
    let mut anomalies = 0u32;
    let mut bad = 0u32;
    let mut total_ticks = 0u64;
    while let Some((line, rec)) = csv.next(&mut file) {
        row += 1;
        let mut x = [0.0f32; D];
        let mut c = [0.0f32; C];
        let result = match rec {
            Err(HeaderError::TooLong) => Err(BadRow::TooLong),
            Err(HeaderError::TooManyCells) => Err(BadRow::Columns(usize::MAX)),
            Err(_) => Err(BadRow::NotText),
            Ok(r) => parse_row(&r, &order, &mut x, &mut c).and_then(|()| {
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
                if !windowed {
                    let _ = writeln!(out, "{lp},{}", u8::from(anomaly));
                    continue;
                }
                let t0 = ticks.now();
                let decision = detector.push(lp);
                detector_ticks += u64::from(Ticks::elapsed(t0, ticks.now()));
                let calibrating = scored as usize <= calibrate;
                if let (true, Some(cal)) = (calibrating, calibrator.as_mut()) {
                    cal.push(lp);
                    if scored as usize == calibrate {
                        match cal.finish(window).map(|w| (w, w.threshold)) {
                            Ok((w, Some(t))) if detector.set_threshold(t).is_ok() => eprintln!(
                                "calibrated: window threshold {t} (site median {:?}, {:?} at fit \
                                 time) from {calibrate} vectors",
                                w.median, window.median
                            ),
                            Ok(_) => return EXIT_FAILURE,
                            Err(e) => {
                                out.flush();
                                eprintln!("error: calibration on {calibrate} vectors: {e}");
                                return EXIT_FAILURE;
                            }
                        }
                    }
                }
                match decision {
                    Decision::WarmingUp { .. } => {
                        let _ = writeln!(out, "{lp},{},,0", u8::from(anomaly));
                    }
                    Decision::Window { score, alarm } => {
                        let alarm = alarm && !calibrating;
                        alarms += u32::from(alarm);
                        let _ = writeln!(
                            out,
                            "{lp},{},{score},{}",
                            u8::from(anomaly),
                            u8::from(alarm)
                        );
                    }
                }
            }
            Err(why) => {
                bad += 1;
                out.flush();
                report_bad_row(path, line, row, &why);
            }
        }
    }
    out.flush();

    let per = if scored > 0 {
        instructions(total_ticks) / u64::from(scored)
    } else {
        0
    };
    eprintln!(
        "summary: {scored} vectors scored, {anomalies} anomalies, {bad} bad rows; \
         {per} instructions per inference (SysTick at {SYSTICK_MHZ} MHz, -icount shift=0); \
         stack high-water {} of {} bytes",
        firmware_example::stack_high_water(),
        firmware_example::stack_size()
    );
    if windowed {
        let per = if scored > 0 {
            instructions(detector_ticks) / u64::from(scored)
        } else {
            0
        };
        eprintln!(
            "window: {WINDOW} vectors, threshold {}, {alarms} alarms; detector {} bytes of RAM, \
             {per} instructions per decision",
            detector.threshold(),
            Detector::<WINDOW>::RAM_BYTES
        );
    }
    if bad > 0 { EXIT_BAD_ROWS } else { EXIT_OK }
}

/// Why a header (or a record) could not be used.
enum HeaderError<'a> {
    /// The record is longer than [`MAX_RECORD`] bytes.
    TooLong,
    /// More cells than the model has columns.
    TooManyCells,
    /// Not UTF-8.
    NotText,
    /// A cell of the header is empty (1-based column).
    Empty(usize),
    /// A name appears twice.
    Repeated(&'a str),
    /// A column of the file that the model does not have.
    Unknown(&'a str),
    /// The model's column that the file lacks.
    Missing(&'a str),
    /// The file has `n` columns, the model (which stores no names) needs D + C.
    Count(usize),
}

impl core::fmt::Display for HeaderError<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::TooLong => write!(f, "longer than {MAX_RECORD} bytes"),
            Self::TooManyCells => write!(f, "more than the model's {} columns", D + C),
            Self::NotText => f.write_str("not UTF-8 text"),
            Self::Empty(i) => write!(f, "column {i} has no name (names must be non-empty)"),
            Self::Repeated(n) => write!(f, "column {n:?} appears twice (names must be unique)"),
            Self::Unknown(n) => write!(f, "column {:?} is not one of the model's", Cut(n)),
            Self::Missing(n) => write!(f, "the model's column {:?} is missing", Cut(n)),
            Self::Count(n) => write!(
                f,
                "{n} columns, the model needs {} ({D} features{}); it stores no column \
                 names, so the columns are taken by position",
                D + C,
                if C == 0 { "" } else { " then the context" }
            ),
        }
    }
}

/// The model's column names, features then context: from the blob's column
/// names (format version 2), or from its `columns=` / `context_columns=`
/// metadata (what `maf-train` wrote into version-1 blobs and still reads), or
/// none.
#[derive(Clone, Copy)]
struct Names {
    names: [&'static str; D + C],
    len: usize,
}

impl Names {
    const fn none() -> Self {
        Self {
            names: [""; D + C],
            len: 0,
        }
    }

    fn iter(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.names[..self.len].iter().copied()
    }

    fn of(maf: &Maf<'static, D, H, L, C, K>) -> Self {
        let header = maf.view().header();
        let mut n = Self::none();
        let mut push_all = |it: &mut dyn Iterator<Item = &'static str>| -> bool {
            for name in it {
                if n.len == D + C {
                    return false;
                }
                n.names[n.len] = name;
                n.len += 1;
            }
            true
        };
        let ok = if !header.columns.is_empty() {
            push_all(&mut header.column_names())
        } else {
            let meta = |key: &str| {
                header
                    .metadata
                    .lines()
                    .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
            };
            match (meta("columns"), meta("context_columns")) {
                (Some(x), Some(ctx)) => {
                    let split = |s: &'static str| s.split(',').filter(move |_| !s.is_empty());
                    push_all(&mut split(x).chain(split(ctx)))
                }
                _ => true,
            }
        };
        if !ok || n.len != D + C {
            return Self::none(); // not a usable name list: by position
        }
        n
    }

    /// `x0`, `x1`, ... in order: a model fitted on a `.npy` array, whose columns
    /// a CSV gives by position (as `maf-train` does).
    fn positional(&self) -> bool {
        self.iter().enumerate().all(|(i, n)| {
            n.strip_prefix('x')
                .and_then(|d| d.parse::<usize>().ok())
                .is_some_and(|d| d == i && n.len() == 1 + digits(i))
        })
    }
}

impl core::fmt::Display for Names {
    /// The names joined by commas, cut after 8 of more than 10.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for (i, n) in self.iter().enumerate() {
            if i == 8 && self.len > 10 {
                return write!(f, ", ... ({} more)", self.len - 8);
            }
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{}", Cut(n))?;
        }
        Ok(())
    }
}

const fn digits(mut i: usize) -> usize {
    let mut d = 1;
    while i >= 10 {
        i /= 10;
        d += 1;
    }
    d
}

/// For each model input (features, then context), the index of its column in the
/// file: the header matched to the model's names **by name** (any order; every
/// name non-empty and unique; no column missing, none extra). A model without
/// names (or fitted on a `.npy` array) takes the columns by position, with the
/// count checked.
fn column_order<'r>(names: &Names, header: &Record<'r>) -> Result<[usize; D + C], HeaderError<'r>> {
    let mut order = [0usize; D + C];
    for (i, slot) in order.iter_mut().enumerate() {
        *slot = i;
    }
    let mut cells = [""; D + C];
    for (i, cell) in header.cells().enumerate() {
        let cell = cell.map_err(|()| HeaderError::NotText)?;
        if cell.is_empty() {
            return Err(HeaderError::Empty(i + 1));
        }
        if cells[..i].contains(&cell) {
            return Err(HeaderError::Repeated(cell));
        }
        cells[i] = cell;
    }
    let n = header.len();
    if names.len == 0 || (names.positional() && n == D + C) {
        if n != D + C {
            return Err(HeaderError::Count(n));
        }
        return Ok(order);
    }
    for (slot, want) in order.iter_mut().zip(names.iter()) {
        *slot = cells[..n]
            .iter()
            .position(|c| *c == want)
            .ok_or(HeaderError::Missing(want))?;
    }
    if let Some(extra) = cells[..n].iter().find(|c| !names.iter().any(|m| m == **c)) {
        return Err(HeaderError::Unknown(extra));
    }
    Ok(order)
}

/// One inference, kept out of line so that its instructions can be counted exactly
/// (`-singlestep -d exec,nochain`, see README.md).
#[inline(never)]
fn log_density(maf: &Maf<'_, D, H, L, C, K>, x: &[f32; D], c: &[f32; C]) -> Result<f32, Error> {
    maf.log_prob(x, c)
}

/// Parses one data row: the cell of model input `i` is `order[i]`.
fn parse_row<'a>(
    rec: &Record<'a>,
    order: &[usize; D + C],
    x: &mut [f32; D],
    c: &mut [f32; C],
) -> Result<(), BadRow<'a>> {
    if rec.len() != D + C {
        return Err(BadRow::Columns(rec.len()));
    }
    for (slot, &col) in x.iter_mut().chain(c.iter_mut()).zip(order) {
        let cell = rec.cell(col).map_err(|()| BadRow::NotText)?;
        // core's parser is correctly rounded, like std's: the same f32 as the host.
        let v: f32 = cell.parse().map_err(|_| BadRow::Unparsable(col, cell))?;
        if !v.is_finite() {
            return Err(BadRow::NotFinite(col, cell));
        }
        *slot = v;
    }
    Ok(())
}

fn report_bad_row(path: &str, line: u64, row: usize, why: &BadRow<'_>) {
    let at = Cut(path);
    match why {
        BadRow::TooLong => eprintln!(
            "bad input: {at}: line {line} (row {row}): longer than {MAX_RECORD} bytes; not scored"
        ),
        BadRow::NotText => {
            eprintln!("bad input: {at}: line {line} (row {row}): not UTF-8 text; not scored")
        }
        BadRow::Columns(usize::MAX) => eprintln!(
            "bad input: {at}: line {line} (row {row}): more than {} cells, expected {}; not scored",
            D + C,
            D + C
        ),
        BadRow::Columns(n) => eprintln!(
            "bad input: {at}: line {line} (row {row}): {n} cells, expected {}; not scored",
            D + C
        ),
        BadRow::Unparsable(i, cell) => eprintln!(
            "bad input: {at}: line {line} (row {row}), column {}: {:?} is not a number; not scored",
            i + 1,
            Cut(cell)
        ),
        BadRow::NotFinite(i, cell) => eprintln!(
            "bad input: {at}: line {line} (row {row}), column {}: {:?} is not finite; not scored",
            i + 1,
            Cut(cell)
        ),
        BadRow::Model(e) => {
            eprintln!("bad input: {at}: line {line} (row {row}): {e}; not scored")
        }
    }
}

/// A string cut to 40 characters for messages (`...` marks the cut).
struct Cut<'a>(&'a str);

impl core::fmt::Display for Cut<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0.char_indices().nth(40) {
            Some((i, _)) => write!(f, "{}...", &self.0[..i]),
            None => f.write_str(self.0),
        }
    }
}

impl core::fmt::Debug for Cut<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0.char_indices().nth(40) {
            Some((i, _)) => write!(f, "{:?}...", &self.0[..i]),
            None => write!(f, "{:?}", self.0),
        }
    }
}

/// One record of the CSV: its cells' bytes (quotes and delimiters removed) and
/// where each ends.
struct Record<'a> {
    bytes: &'a [u8],
    ends: &'a [usize],
}

impl<'a> Record<'a> {
    fn len(&self) -> usize {
        self.ends.len()
    }

    /// Cell `i`, trimmed of spaces (`Err` if not UTF-8).
    fn cell(&self, i: usize) -> Result<&'a str, ()> {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        let bytes = &self.bytes[start..self.ends[i]];
        core::str::from_utf8(bytes).map(str::trim).map_err(|_| ())
    }

    fn cells(&self) -> impl Iterator<Item = Result<&'a str, ()>> + '_ {
        (0..self.len()).map(|i| self.cell(i))
    }
}

/// A host file read as CSV records with `csv-core` (the engine of the host's
/// `csv` crate, so both sides split a file the same way), in 512-byte chunks
/// through semihosting.
struct Csv {
    reader: csv_core::Reader,
    chunk: [u8; 512],
    start: usize,
    end: usize,
    eof: bool,
    first_chunk: bool,
    out: [u8; MAX_RECORD],
    ends: [usize; MAX_FIELDS],
}

impl Csv {
    fn new() -> Self {
        Self {
            reader: csv_core::Reader::new(),
            chunk: [0; 512],
            start: 0,
            end: 0,
            eof: false,
            first_chunk: true,
            out: [0; MAX_RECORD],
            ends: [0; MAX_FIELDS],
        }
    }

    /// The next record (blank lines are skipped), `Err` for a record longer than
    /// [`MAX_RECORD`] bytes or with more than [`MAX_FIELDS`] cells (the rest of it
    /// is skipped); `None` at the end of the file.
    /// With the record, the line (1-based) it starts on.
    #[allow(clippy::type_complexity)]
    fn next(
        &mut self,
        file: &mut HostFile,
    ) -> Option<(u64, Result<Record<'_>, HeaderError<'static>>)> {
        use csv_core::ReadRecordResult as R;
        let (mut nout, mut nend) = (0usize, 0usize);
        let (mut too_long, mut too_many) = (false, false);
        loop {
            if self.start == self.end && !self.eof {
                self.end = file.read(&mut self.chunk);
                self.start = 0;
                if self.first_chunk {
                    self.first_chunk = false;
                    // A UTF-8 byte-order mark is not part of the first name.
                    if self.chunk[..self.end].starts_with(b"\xEF\xBB\xBF") {
                        self.start = 3;
                    }
                }
                self.eof = self.end == 0;
            }
            let input = &self.chunk[self.start..self.end];
            let (res, nin, n_out, n_end) =
                self.reader
                    .read_record(input, &mut self.out[nout..], &mut self.ends[nend..]);
            self.start += nin;
            nout += n_out;
            nend += n_end;
            match res {
                R::InputEmpty => {}
                R::OutputFull => {
                    // Keep reading, dropping the bytes: the row is reported.
                    too_long = true;
                    nout = 0;
                    nend = 0;
                }
                R::OutputEndsFull => {
                    too_many = true;
                    nend = 0;
                }
                R::Record => {
                    // The reader has passed the record's terminator (a '\n'),
                    // unless the file ended without one; the line it starts on is
                    // that minus the newlines inside quoted cells.
                    let end_line = self.reader.line() - u64::from(!self.eof);
                    let inner = self.out[..nout].iter().filter(|&&b| b == b'\n').count();
                    let line = end_line.saturating_sub(inner as u64);
                    if too_long {
                        return Some((line, Err(HeaderError::TooLong)));
                    }
                    if too_many {
                        return Some((line, Err(HeaderError::TooManyCells)));
                    }
                    // csv-core counts the ends from the record's start across
                    // calls, as the output was passed in (`out[nout..]`).
                    return Some((
                        line,
                        Ok(Record {
                            bytes: &self.out[..nout],
                            ends: &self.ends[..nend],
                        }),
                    ));
                }
                R::End => return None,
            }
        }
    }
}
