//! Element catalogs: TLE (2-line and 3-line) and CCSDS OMM in JSON, parsed into propagatable [`Satellite`]s.
//!
//! A malformed record is an error that names the record (index and satellite), the line and the field with its
//! columns. [`Catalog::parse_tle_lenient`] keeps the good records and reports every bad one: nothing is dropped
//! silently.

use crate::propagate::{PropagationError, Satellite};
use std::fmt;

/// Which line of a TLE record an error is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TleLine {
    /// The optional name line of a 3-line record.
    Name,
    /// Line 1.
    One,
    /// Line 2.
    Two,
}

impl fmt::Display for TleLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TleLine::Name => "name line",
            TleLine::One => "line 1",
            TleLine::Two => "line 2",
        })
    }
}

/// What is wrong with one catalog record.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RecordProblem {
    /// A line is not 69 characters long.
    #[error("{line} is {len} characters long, expected 69")]
    Length {
        /// The line.
        line: TleLine,
        /// Its length.
        len: usize,
    },
    /// A line does not start with its line number.
    #[error("{line} must start with '{expected}', found {found:?}")]
    LineNumber {
        /// The line.
        line: TleLine,
        /// The expected first character.
        expected: char,
        /// What was found.
        found: String,
    },
    /// The modulo-10 checksum in column 69 does not match.
    #[error("{line}: checksum (column 69) is {found}, computed {computed}")]
    Checksum {
        /// The line.
        line: TleLine,
        /// The checksum digit found.
        found: String,
        /// The checksum computed from columns 1-68.
        computed: u32,
    },
    /// A field does not parse.
    #[error("{line}: field '{field}' (columns {first}-{last}) is {text:?}, expected {expected}")]
    Field {
        /// The line.
        line: TleLine,
        /// The field's name.
        field: &'static str,
        /// First column (1-based).
        first: usize,
        /// Last column (1-based, inclusive).
        last: usize,
        /// The field's text.
        text: String,
        /// What it should be.
        expected: &'static str,
    },
    /// Line 1 and line 2 carry different catalog numbers.
    #[error("catalog number differs between line 1 ({one:?}) and line 2 ({two:?})")]
    NoradMismatch {
        /// Line 1's catalog number.
        one: String,
        /// Line 2's catalog number.
        two: String,
    },
    /// The record ended before its two element lines.
    #[error("record is incomplete: {0}")]
    Incomplete(&'static str),
    /// The `sgp4` crate refused the record after the field checks passed.
    #[error("{0}")]
    Elements(String),
    /// An OMM record does not decode.
    #[error("OMM: {0}")]
    Omm(String),
    /// The elements parse but SGP4 cannot be initialised from them.
    #[error(transparent)]
    Propagation(#[from] PropagationError),
}

/// One bad record of a catalog: where it is and what is wrong.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("record {index}{}, starting at text line {text_line}: {problem}", name.as_deref().map(|n| format!(" ({n})")).unwrap_or_default())]
pub struct RecordError {
    /// 0-based index of the record in the catalog.
    pub index: usize,
    /// The satellite's name or catalog number, when it could be read.
    pub name: Option<String>,
    /// 1-based line of the text where the record starts (for OMM: the record index + 1).
    pub text_line: usize,
    /// What is wrong.
    pub problem: RecordProblem,
}

/// A catalog that failed to load as a whole.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CatalogError {
    /// One or more records are malformed (the first is shown; all are listed).
    #[error("{} malformed record(s); first: {}", .0.len(), .0[0])]
    Records(Vec<RecordError>),
    /// The OMM document is not a JSON array (or object) of records.
    #[error("OMM document is not valid JSON: {0}")]
    OmmDocument(String),
    /// The catalog holds no satellites.
    #[error("catalog is empty")]
    Empty,
}

/// A set of satellites ready to propagate, in file order.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    /// The satellites, in the order of the input.
    pub satellites: Vec<Satellite>,
}

/// A leniently loaded catalog: the good satellites and every record that was refused.
#[derive(Debug, Clone, Default)]
pub struct LenientCatalog {
    /// The satellites that parsed.
    pub catalog: Catalog,
    /// The records that did not, with why.
    pub rejected: Vec<RecordError>,
}

impl Catalog {
    /// Parses TLE text (2-line or 3-line records, mixed freely); any malformed record fails the whole catalog.
    pub fn parse_tle(text: &str) -> Result<Catalog, CatalogError> {
        strict(Self::parse_tle_lenient(text))
    }

    /// Parses TLE text keeping the good records and reporting the bad ones.
    pub fn parse_tle_lenient(text: &str) -> LenientCatalog {
        let mut out = LenientCatalog::default();
        let lines: Vec<(usize, &str)> = text
            .lines()
            .enumerate()
            .map(|(i, l)| (i + 1, l.trim_end_matches(['\r', ' ', '\t'])))
            .filter(|(_, l)| !l.trim().is_empty())
            .collect();
        let mut i = 0;
        let mut index = 0;
        while i < lines.len() {
            let (start_line, first) = lines[i];
            // A record is an optional name line followed by lines starting "1 " and "2 ".
            let (name, l1, l2, consumed) = if is_element_line(first, '1') {
                (None, Some(first), lines.get(i + 1).map(|l| l.1), 2)
            } else {
                let name = first.trim().trim_start_matches("0 ").trim().to_owned();
                (
                    Some(name),
                    lines.get(i + 1).map(|l| l.1),
                    lines.get(i + 2).map(|l| l.1),
                    3,
                )
            };
            let result = match (l1, l2) {
                (Some(l1), Some(l2)) => parse_tle_record(name.clone(), l1, l2),
                _ => Err(RecordProblem::Incomplete(
                    "expected line 1 and line 2 after it",
                )),
            };
            // When the line after a name line is not a line 1, resynchronise on the next line rather than
            // swallowing the following record.
            let consumed = match (&result, l1) {
                (Err(_), Some(l1)) if name.is_some() && !is_element_line(l1, '1') => 1,
                _ => consumed,
            };
            match result {
                Ok(sat) => out.catalog.satellites.push(sat),
                Err(problem) => out.rejected.push(RecordError {
                    index,
                    name: name
                        .or_else(|| l1.and_then(|l| l.get(2..7)).map(|n| n.trim().to_owned())),
                    text_line: start_line,
                    problem,
                }),
            }
            index += 1;
            i += consumed;
        }
        out
    }

    /// Parses CCSDS OMM records in JSON (an array of objects, or a single object), as catalog services publish.
    pub fn parse_omm_json(text: &str) -> Result<Catalog, CatalogError> {
        strict(Self::parse_omm_json_lenient(text)?)
    }

    /// Parses OMM JSON keeping the good records and reporting the bad ones; fails only if the document itself
    /// is not JSON.
    pub fn parse_omm_json_lenient(text: &str) -> Result<LenientCatalog, CatalogError> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| CatalogError::OmmDocument(e.to_string()))?;
        let records = match value {
            serde_json::Value::Array(records) => records,
            object @ serde_json::Value::Object(_) => vec![object],
            _ => {
                return Err(CatalogError::OmmDocument(
                    "expected an array of OMM objects".into(),
                ));
            }
        };
        let mut out = LenientCatalog::default();
        for (index, record) in records.into_iter().enumerate() {
            let name = record
                .get("OBJECT_NAME")
                .and_then(|n| n.as_str())
                .map(str::to_owned)
                .or_else(|| record.get("NORAD_CAT_ID").map(|n| n.to_string()));
            let parsed = serde_json::from_value::<sgp4::Elements>(record)
                .map_err(|e| RecordProblem::Omm(e.to_string()))
                .and_then(|elements| Satellite::new(elements).map_err(RecordProblem::from));
            match parsed {
                Ok(sat) => out.catalog.satellites.push(sat),
                Err(problem) => out.rejected.push(RecordError {
                    index,
                    name,
                    text_line: index + 1,
                    problem,
                }),
            }
        }
        Ok(out)
    }

    /// The satellite with this name or catalog number.
    pub fn find(&self, key: &str) -> Option<&Satellite> {
        self.satellites
            .iter()
            .find(|s| s.name == key || s.norad_id.to_string() == key)
    }
}

fn strict(lenient: LenientCatalog) -> Result<Catalog, CatalogError> {
    if !lenient.rejected.is_empty() {
        return Err(CatalogError::Records(lenient.rejected));
    }
    if lenient.catalog.satellites.is_empty() {
        return Err(CatalogError::Empty);
    }
    Ok(lenient.catalog)
}

fn is_element_line(line: &str, number: char) -> bool {
    let mut chars = line.chars();
    chars.next() == Some(number) && chars.next() == Some(' ')
}

/// A field of a TLE line: its name, 1-based inclusive columns and the kind of text it holds.
struct FieldSpec {
    name: &'static str,
    first: usize,
    last: usize,
    kind: FieldKind,
}

#[derive(Clone, Copy)]
enum FieldKind {
    /// Catalog number: digits, or Alpha-5 (a letter then four digits).
    Catalog,
    /// Unsigned integer, may be blank-padded.
    Integer,
    /// Decimal number with an explicit point, optional sign.
    Decimal,
    /// Number with an assumed leading decimal point and an exponent (`-11606-4`).
    AssumedPoint,
    /// Digits with an assumed leading decimal point (eccentricity).
    AssumedPointDigits,
}

impl FieldKind {
    fn expected(self) -> &'static str {
        match self {
            FieldKind::Catalog => "a catalog number (5 digits or Alpha-5)",
            FieldKind::Integer => "an integer",
            FieldKind::Decimal => "a decimal number",
            FieldKind::AssumedPoint => {
                "a number with assumed decimal point and exponent, like ' 12345-4'"
            }
            FieldKind::AssumedPointDigits => "digits (assumed leading decimal point)",
        }
    }

    fn accepts(self, text: &str) -> bool {
        let t = text.trim();
        match self {
            FieldKind::Catalog => {
                let b = t.as_bytes();
                !b.is_empty()
                    && (b.iter().all(u8::is_ascii_digit)
                        || (b.len() == 5
                            && b[0].is_ascii_uppercase()
                            && b[1..].iter().all(u8::is_ascii_digit)))
            }
            FieldKind::Integer => !t.is_empty() && t.bytes().all(|c| c.is_ascii_digit()),
            FieldKind::Decimal => {
                let body = t.strip_prefix(['-', '+']).unwrap_or(t);
                !body.is_empty() && body.contains('.') && body.parse::<f64>().is_ok()
            }
            FieldKind::AssumedPoint => {
                let body = t.strip_prefix(['-', '+']).unwrap_or(t);
                let split = body.rfind(['-', '+']);
                match split {
                    Some(k) if k > 0 => {
                        body[..k].bytes().all(|c| c.is_ascii_digit())
                            && body[k + 1..].bytes().all(|c| c.is_ascii_digit())
                            && k + 1 < body.len()
                    }
                    _ => !body.is_empty() && body.bytes().all(|c| c.is_ascii_digit()),
                }
            }
            FieldKind::AssumedPointDigits => !t.is_empty() && t.bytes().all(|c| c.is_ascii_digit()),
        }
    }
}

const LINE1_FIELDS: &[FieldSpec] = &[
    FieldSpec {
        name: "catalog number",
        first: 3,
        last: 7,
        kind: FieldKind::Catalog,
    },
    FieldSpec {
        name: "epoch year",
        first: 19,
        last: 20,
        kind: FieldKind::Integer,
    },
    FieldSpec {
        name: "epoch day",
        first: 21,
        last: 32,
        kind: FieldKind::Decimal,
    },
    FieldSpec {
        name: "mean motion first derivative",
        first: 34,
        last: 43,
        kind: FieldKind::Decimal,
    },
    FieldSpec {
        name: "mean motion second derivative",
        first: 45,
        last: 52,
        kind: FieldKind::AssumedPoint,
    },
    FieldSpec {
        name: "B* drag term",
        first: 54,
        last: 61,
        kind: FieldKind::AssumedPoint,
    },
    FieldSpec {
        name: "element set number",
        first: 65,
        last: 68,
        kind: FieldKind::Integer,
    },
];

const LINE2_FIELDS: &[FieldSpec] = &[
    FieldSpec {
        name: "catalog number",
        first: 3,
        last: 7,
        kind: FieldKind::Catalog,
    },
    FieldSpec {
        name: "inclination",
        first: 9,
        last: 16,
        kind: FieldKind::Decimal,
    },
    FieldSpec {
        name: "right ascension of ascending node",
        first: 18,
        last: 25,
        kind: FieldKind::Decimal,
    },
    FieldSpec {
        name: "eccentricity",
        first: 27,
        last: 33,
        kind: FieldKind::AssumedPointDigits,
    },
    FieldSpec {
        name: "argument of perigee",
        first: 35,
        last: 42,
        kind: FieldKind::Decimal,
    },
    FieldSpec {
        name: "mean anomaly",
        first: 44,
        last: 51,
        kind: FieldKind::Decimal,
    },
    FieldSpec {
        name: "mean motion",
        first: 53,
        last: 63,
        kind: FieldKind::Decimal,
    },
    FieldSpec {
        name: "revolution number",
        first: 64,
        last: 68,
        kind: FieldKind::Integer,
    },
];

/// Modulo-10 TLE checksum of columns 1-68: digits count their value, '-' counts one.
fn checksum(line: &str) -> u32 {
    line.bytes()
        .take(68)
        .map(|c| match c {
            b'0'..=b'9' => u32::from(c - b'0'),
            b'-' => 1,
            _ => 0,
        })
        .sum::<u32>()
        % 10
}

fn check_line(line: &str, which: TleLine, fields: &[FieldSpec]) -> Result<(), RecordProblem> {
    let number = if which == TleLine::One { '1' } else { '2' };
    if !line.is_ascii() || line.len() != 69 {
        // A wrong line number is a clearer diagnosis than a wrong length when both are off.
        if !is_element_line(line, number) {
            return Err(RecordProblem::LineNumber {
                line: which,
                expected: number,
                found: line.chars().take(2).collect(),
            });
        }
        return Err(RecordProblem::Length {
            line: which,
            len: line.chars().count(),
        });
    }
    if !is_element_line(line, number) {
        return Err(RecordProblem::LineNumber {
            line: which,
            expected: number,
            found: line[..2].to_owned(),
        });
    }
    for spec in fields {
        let text = &line[spec.first - 1..spec.last];
        if !spec.kind.accepts(text) {
            return Err(RecordProblem::Field {
                line: which,
                field: spec.name,
                first: spec.first,
                last: spec.last,
                text: text.to_owned(),
                expected: spec.kind.expected(),
            });
        }
    }
    let found = &line[68..69];
    let computed = checksum(line);
    if found.parse::<u32>().ok() != Some(computed) {
        return Err(RecordProblem::Checksum {
            line: which,
            found: found.to_owned(),
            computed,
        });
    }
    Ok(())
}

fn parse_tle_record(name: Option<String>, l1: &str, l2: &str) -> Result<Satellite, RecordProblem> {
    check_line(l1, TleLine::One, LINE1_FIELDS)?;
    check_line(l2, TleLine::Two, LINE2_FIELDS)?;
    if l1[2..7] != l2[2..7] {
        return Err(RecordProblem::NoradMismatch {
            one: l1[2..7].to_owned(),
            two: l2[2..7].to_owned(),
        });
    }
    let elements = sgp4::Elements::from_tle(name, l1.as_bytes(), l2.as_bytes())
        .map_err(|e| RecordProblem::Elements(e.to_string()))?;
    Ok(Satellite::new(elements)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISS: &str = "ISS (ZARYA)
1 25544U 98067A   08264.51782528 -.00002182  00000-0 -11606-4 0  2927
2 25544  51.6416 247.4627 0006703 130.5360 325.0288 15.72125391563537
";

    #[test]
    fn parses_three_line_and_two_line_records() {
        let two_line: String = ISS.lines().skip(1).map(|l| format!("{l}\n")).collect();
        let cat = Catalog::parse_tle(&format!("{ISS}{two_line}")).expect("valid");
        assert_eq!(cat.satellites.len(), 2);
        assert_eq!(cat.satellites[0].name, "ISS (ZARYA)");
        assert_eq!(cat.satellites[1].name, "25544");
        assert_eq!(cat.satellites[1].norad_id, 25544);
    }

    #[test]
    fn bad_checksum_names_line_and_satellite() {
        let bad = ISS.replace("0  2927", "0  2928");
        let err = Catalog::parse_tle(&bad).expect_err("checksum");
        let text = err.to_string();
        assert!(text.contains("ISS (ZARYA)"), "{text}");
        assert!(text.contains("line 1"), "{text}");
        assert!(text.contains("checksum"), "{text}");
    }

    #[test]
    fn bad_field_names_field_and_columns() {
        // Corrupt the inclination and fix up the checksum so the field check is what fails.
        let mut l2 =
            "2 25544  51.64X6 247.4627 0006703 130.5360 325.0288 15.7212539156353".to_owned();
        l2.push(char::from_digit(checksum(&l2), 10).expect("digit"));
        let text = format!(
            "SAT\n1 25544U 98067A   08264.51782528 -.00002182  00000-0 -11606-4 0  2927\n{l2}\n"
        );
        let err = Catalog::parse_tle(&text).expect_err("field").to_string();
        assert!(err.contains("inclination"), "{err}");
        assert!(err.contains("columns 9-16"), "{err}");
        assert!(err.contains("line 2"), "{err}");
    }

    #[test]
    fn lenient_load_keeps_good_records_and_reports_bad_ones() {
        let truncated =
            "BROKEN\n1 25544U 98067A   08264.51782528 -.00002182  00000-0\n2 25544  51.6416\n";
        let text = format!("{ISS}{truncated}{ISS}");
        let lenient = Catalog::parse_tle_lenient(&text);
        assert_eq!(lenient.catalog.satellites.len(), 2);
        assert_eq!(lenient.rejected.len(), 1);
        assert_eq!(lenient.rejected[0].index, 1);
        assert_eq!(lenient.rejected[0].name.as_deref(), Some("BROKEN"));
        assert_eq!(lenient.rejected[0].text_line, 4);
        assert!(matches!(
            lenient.rejected[0].problem,
            RecordProblem::Length {
                line: TleLine::One,
                ..
            }
        ));
    }

    #[test]
    fn missing_line_two_is_reported() {
        let text =
            "LONELY\n1 25544U 98067A   08264.51782528 -.00002182  00000-0 -11606-4 0  2927\n";
        let err = Catalog::parse_tle(text)
            .expect_err("incomplete")
            .to_string();
        assert!(
            err.contains("LONELY") && err.contains("incomplete"),
            "{err}"
        );
    }

    #[test]
    fn mismatched_catalog_numbers_are_refused() {
        let mut l2 =
            "2 25545  51.6416 247.4627 0006703 130.5360 325.0288 15.7212539156353".to_owned();
        l2.push(char::from_digit(checksum(&l2), 10).expect("digit"));
        let text = format!(
            "1 25544U 98067A   08264.51782528 -.00002182  00000-0 -11606-4 0  2927\n{l2}\n"
        );
        let err = Catalog::parse_tle(&text).expect_err("mismatch");
        assert!(err.to_string().contains("differs"), "{err}");
    }

    #[test]
    fn empty_catalog_is_an_error() {
        assert_eq!(
            Catalog::parse_tle("\n\n").expect_err("empty"),
            CatalogError::Empty
        );
    }

    #[test]
    fn omm_json_parses_and_bad_records_are_named() {
        let omm = r#"[{
            "OBJECT_NAME": "ISS (ZARYA)", "OBJECT_ID": "1998-067A", "EPOCH": "2020-12-13T16:36:04.502592",
            "MEAN_MOTION": 15.49226062, "ECCENTRICITY": 0.0001791, "INCLINATION": 51.6425,
            "RA_OF_ASC_NODE": 160.3689, "ARG_OF_PERICENTER": 103.0442, "MEAN_ANOMALY": 14.6823,
            "EPHEMERIS_TYPE": 0, "CLASSIFICATION_TYPE": "U", "NORAD_CAT_ID": 25544, "ELEMENT_SET_NO": 999,
            "REV_AT_EPOCH": 25993, "BSTAR": 0.0034, "MEAN_MOTION_DOT": 0.00002791, "MEAN_MOTION_DDOT": 0
        }, {"OBJECT_NAME": "NO EPOCH", "NORAD_CAT_ID": 1}]"#;
        let lenient = Catalog::parse_omm_json_lenient(omm).expect("json");
        assert_eq!(lenient.catalog.satellites.len(), 1);
        assert_eq!(lenient.catalog.satellites[0].norad_id, 25544);
        assert_eq!(lenient.rejected.len(), 1);
        assert_eq!(lenient.rejected[0].name.as_deref(), Some("NO EPOCH"));
        let err = Catalog::parse_omm_json(omm)
            .expect_err("strict")
            .to_string();
        assert!(err.contains("record 1 (NO EPOCH)"), "{err}");
        assert!(matches!(
            Catalog::parse_omm_json("{not json"),
            Err(CatalogError::OmmDocument(_))
        ));
    }
}
