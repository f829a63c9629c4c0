//! The product-shaped UART firmware (`firmware-example`, bin `uart`) under QEMU:
//! vectors as postcard COBS frames on UART0, answers as frames. Through the host
//! driver `maf-uart`, its scores equal `maf-train score`'s byte for byte on 1,202
//! vectors (two far outside the data: `-inf`) on each core of the matrix (M4F,
//! M3, M33, M55); malformed frames get an error
//! answer, never a score, and the link stays in step; a corrupt model is refused
//! at boot and for every frame; the firmware fits 32 KiB of flash.
// Tests state their expectations with expect().
#![allow(clippy::expect_used)]

use std::fs;
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use maf_tests::uart::{Answer, Link, Reason, frame, request};
use maf_tests::{
    Firmware, M4F, MACHINES, Machine, assert_success, csv_subset, data, example_model,
    firmware_dir, maf_train_ok, run, tempdir,
};

fn firmware() -> &'static Firmware {
    static FW: OnceLock<Firmware> = OnceLock::new();
    FW.get_or_init(|| Firmware::build_for(&M4F, &example_model(), &["uart"]))
}

fn link(model: &Path) -> Link {
    Link::start(
        &firmware_dir().join("qemu-run.sh"),
        &firmware().elf("uart"),
        M4F.name,
        model,
    )
    .expect("qemu-run.sh starts")
}

const WAIT: Duration = Duration::from_secs(60);

/// Scores 1,202 vectors through `maf-uart` on `machine` and compares the CSV with
/// `maf-train score`'s byte for byte.
fn parity_on(machine: &'static Machine, fw: &Firmware) {
    let tmp = tempdir();
    let dir = tmp.path();
    // 900 normal rows and 300 anomalous ones (3000.. are badminton), then two
    // far outside the data: log density -inf on both sides.
    let vectors = csv_subset(
        &data("basicmotions_test.csv"),
        dir,
        "v.csv",
        &[(0, 900), (3000, 300)],
    );
    let mut text = fs::read_to_string(&vectors).expect("written");
    text.push_str("1e30,1e30,1e30,1e30,1e30,1e30\n-3e38,3e38,-3e38,3e38,-3e38,3e38\n");
    fs::write(&vectors, text).expect("writable");
    let model = example_model();
    let p = |p: &Path| p.to_str().expect("UTF-8 paths").to_owned();
    let host = dir.join("host.csv");
    maf_train_ok(&[
        "score",
        "--model",
        &p(&model),
        "--data",
        &p(&vectors),
        "--out",
        &p(&host),
    ]);
    let device = dir.join("device.csv");
    let r = run(
        Command::new(env!("CARGO_BIN_EXE_maf-uart")).args([
            "--model",
            &p(&model),
            "--data",
            &p(&vectors),
            "--out",
            &p(&device),
            "--elf",
            &p(&fw.elf("uart")),
            "--machine",
            machine.name,
        ]),
        Duration::from_secs(300),
    );
    assert_success("maf-uart", &r);
    let host = fs::read_to_string(host).expect("host scores");
    let device = fs::read_to_string(device).expect("device scores");
    assert_eq!(host.lines().count(), 1 + 1202);
    assert!(
        host.ends_with("-inf,1\n-inf,1\n"),
        "{}",
        &host[host.len() - 40..]
    );
    assert_eq!(
        host, device,
        "{}: the UART path differs from maf-train score",
        machine.core
    );
}

#[test]
fn uart_scores_equal_maf_train_score_byte_for_byte() {
    parity_on(&M4F, firmware());
}

/// The same on the other cores of the matrix (their UART0 addresses differ:
/// machines.txt).
#[test]
fn uart_parity_on_m3_m33_m55() {
    for machine in &MACHINES[1..] {
        let fw = Firmware::build_for(machine, &example_model(), &["uart"]);
        parity_on(machine, &fw);
    }
}

#[test]
fn bad_frames_get_an_error_answer_never_a_score() {
    let mut l = link(&example_model());
    assert_eq!(
        l.answer(WAIT),
        Ok(Answer::Ready {
            features: 6,
            context: 0
        })
    );
    let good = [0.1f32, 0.2, 0.3, 0.4, 0.5, 0.6];
    l.send(&request(&good)).expect("link");
    let Ok(Answer::Score { log_prob, .. }) = l.answer(WAIT) else {
        panic!("no score for a good vector")
    };
    let payload: Vec<u8> = good.iter().flat_map(|v| v.to_le_bytes()).collect();
    let cases: Vec<(&str, Vec<u8>, Reason)> = vec![
        ("5 floats", request(&good[..5]), Reason::WrongLength),
        (
            "7 floats",
            request(&[good.as_slice(), &[1.0]].concat()),
            Reason::TooLong,
        ),
        (
            "one byte too many",
            frame(&[payload.as_slice(), &[7]].concat()),
            Reason::TooLong,
        ),
        ("empty payload", vec![0x01, 0x00], Reason::WrongLength),
        (
            "a code byte past the end",
            vec![0x09, 1, 2, 3, 0],
            Reason::BadEncoding,
        ),
        (
            "NaN",
            request(&[0.1, f32::NAN, 0.3, 0.4, 0.5, 0.6]),
            Reason::NotFinite,
        ),
        (
            "inf",
            request(&[0.1, 0.2, 0.3, f32::INFINITY, 0.5, 0.6]),
            Reason::NotFinite,
        ),
        (
            "-inf",
            request(&[f32::NEG_INFINITY, 0.2, 0.3, 0.4, 0.5, 0.6]),
            Reason::NotFinite,
        ),
        (
            "4 KB of noise",
            {
                let mut v = vec![0x55u8; 4096];
                v.push(0);
                v
            },
            Reason::TooLong,
        ),
    ];
    for (what, bytes, reason) in &cases {
        l.send(bytes).expect("link");
        assert_eq!(l.answer(WAIT), Ok(Answer::Refused(*reason)), "{what}");
        // Still in step: the good vector scores the same bits.
        l.send(&request(&good)).expect("link");
        match l.answer(WAIT) {
            Ok(Answer::Score { log_prob: lp, .. }) => {
                assert_eq!(lp.to_bits(), log_prob.to_bits(), "after {what}")
            }
            other => panic!("after {what}: {other:?}"),
        }
    }
    // A lone 0x00 is no frame (resync): no answer for it.
    l.send(&[0, 0]).expect("link");
    l.send(&request(&good)).expect("link");
    assert!(matches!(l.answer(WAIT), Ok(Answer::Score { .. })));
    // Status: counters and the stack high-water mark.
    l.send(&frame(b"S")).expect("link");
    match l.answer(WAIT) {
        Ok(Answer::Status {
            scored,
            refused,
            stack,
        }) => {
            assert_eq!(
                (scored, refused),
                (2 + cases.len() as u32, cases.len() as u32)
            );
            assert!(stack > 0 && stack < 4096, "stack {stack}");
            eprintln!("uart firmware: stack high-water {stack} B");
        }
        other => panic!("status: {other:?}"),
    }
}

#[test]
fn corrupt_model_is_refused_at_boot_and_for_every_frame() {
    let tmp = tempdir();
    let mut blob = fs::read(example_model()).expect("bundled model");
    let mid = blob.len() / 2;
    blob[mid] ^= 0x40;
    let bad = tmp.path().join("corrupt.maf");
    fs::write(&bad, &blob).expect("writable");
    let mut l = link(&bad);
    assert_eq!(l.answer(WAIT), Ok(Answer::Refused(Reason::NoModel)));
    l.send(&request(&[0.1, 0.2, 0.3, 0.4, 0.5, 0.6]))
        .expect("link");
    assert_eq!(l.answer(WAIT), Ok(Answer::Refused(Reason::NoModel)));
}

/// Flash of the UART firmware without the model (`.vector_table` + `.text` +
/// `.rodata` of the ELF) fits 32 KiB; RAM is `.data` + `.bss` + stack.
#[test]
fn uart_firmware_fits_32_kib_of_flash() {
    let elf = fs::read(firmware().elf("uart")).expect("ELF");
    let (flash, ram) = maf_tests::elf_sizes(&elf);
    eprintln!("uart firmware: flash {flash} B, static RAM {ram} B");
    assert!(flash <= 32 * 1024, "flash {flash} B > 32 KiB");
}
