//! The header of a `.npy` file: the Python dict literal
//! `{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }`, read by a tiny
//! parser of the literal subset NumPy writes.

/// The fields of a `.npy` header that matter here.
#[derive(Debug, Default)]
pub(super) struct NpyHeader {
    pub(super) descr: String,
    pub(super) fortran_order: bool,
    pub(super) shape: Vec<usize>,
}

/// A value of the Python literal subset `.npy` headers use.
#[derive(Debug)]
enum PyValue {
    Str(String),
    Bool(bool),
    Int(usize),
    Seq(Vec<PyValue>),
    Other,
}

/// A tiny parser for the Python dict literal of a `.npy` header, e.g.
/// `{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }`.
struct PyParser<'a> {
    s: &'a [u8],
    i: usize,
}

impl PyParser<'_> {
    fn ws(&mut self) {
        while self.s.get(self.i).is_some_and(u8::is_ascii_whitespace) {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        self.ws();
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn value(&mut self, depth: usize) -> Result<PyValue, String> {
        if depth > 8 {
            return Err("nested too deeply".into());
        }
        self.ws();
        match self.s.get(self.i) {
            Some(&q @ (b'\'' | b'"')) => {
                self.i += 1;
                let start = self.i;
                while self.s.get(self.i).is_some_and(|&c| c != q) {
                    self.i += 1;
                }
                if self.i >= self.s.len() {
                    return Err("unterminated string".into());
                }
                let v = String::from_utf8_lossy(&self.s[start..self.i]).into_owned();
                self.i += 1;
                Ok(PyValue::Str(v))
            }
            Some(&open @ (b'(' | b'[')) => {
                let close = if open == b'(' { b')' } else { b']' };
                self.i += 1;
                let mut items = Vec::new();
                loop {
                    if self.eat(close) {
                        break;
                    }
                    items.push(self.value(depth + 1)?);
                    if !self.eat(b',') {
                        if self.eat(close) {
                            break;
                        }
                        return Err("expected ',' or a closing bracket".into());
                    }
                }
                Ok(PyValue::Seq(items))
            }
            Some(c) if c.is_ascii_alphanumeric() => {
                let start = self.i;
                while self
                    .s
                    .get(self.i)
                    .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
                {
                    self.i += 1;
                }
                let word = &self.s[start..self.i];
                // Python 2 era files write longs as `3L`.
                let digits = word.strip_suffix(b"L").unwrap_or(word);
                Ok(match word {
                    b"True" => PyValue::Bool(true),
                    b"False" => PyValue::Bool(false),
                    _ if !digits.is_empty() && digits.iter().all(u8::is_ascii_digit) => {
                        std::str::from_utf8(digits)
                            .ok()
                            .and_then(|d| d.parse().ok())
                            .map_or(PyValue::Other, PyValue::Int)
                    }
                    _ => PyValue::Other,
                })
            }
            Some(c) => Err(format!("unexpected character {:?}", char::from(*c))),
            None => Err("ends early".into()),
        }
    }
}

impl NpyHeader {
    pub(super) fn parse(text: &str) -> Result<Self, String> {
        let mut p = PyParser {
            s: text.as_bytes(),
            i: 0,
        };
        if !p.eat(b'{') {
            return Err("not a Python dict".into());
        }
        let (mut descr, mut fortran, mut shape) = (None, None, None);
        loop {
            if p.eat(b'}') {
                break;
            }
            let PyValue::Str(key) = p.value(0)? else {
                return Err("a key is not a string".into());
            };
            if !p.eat(b':') {
                return Err("expected ':' after a key".into());
            }
            let v = p.value(0)?;
            match (key.as_str(), v) {
                ("descr", PyValue::Str(d)) => descr = Some(d),
                ("descr", _) => {
                    return Err(
                        "a structured dtype; only plain '<f4' or '<f8' arrays are supported".into(),
                    );
                }
                ("fortran_order", PyValue::Bool(b)) => fortran = Some(b),
                ("shape", PyValue::Seq(dims)) => {
                    let dims = dims
                        .into_iter()
                        .map(|d| match d {
                            PyValue::Int(n) => Ok(n),
                            _ => Err("shape holds a non-integer".to_string()),
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    shape = Some(dims);
                }
                ("fortran_order" | "shape", _) => {
                    return Err(format!("{key:?} has an unexpected value"));
                }
                _ => {}
            }
            if !p.eat(b',') {
                if p.eat(b'}') {
                    break;
                }
                return Err("expected ',' or '}'".into());
            }
        }
        match (descr, fortran, shape) {
            (Some(descr), Some(fortran_order), Some(shape)) => Ok(NpyHeader {
                descr,
                fortran_order,
                shape,
            }),
            _ => Err("missing 'descr', 'fortran_order' or 'shape'".into()),
        }
    }
}
