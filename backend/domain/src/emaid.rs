//! eMAIDs: the contract ids of e-mobility accounts (ISO 15118-1 Annex H, DIN SPEC 91286, eMI3).
//!
//! An eMAID is a country code (2 letters), a provider id (3 letters or digits), an eMA instance
//! (9 letters or digits; ours start with `C` for "contract") and a check character, written with
//! or without hyphens: `NL-ABC-C12345678-X` or `NLABCC12345678X`.
//!
//! The check character follows the published algorithm of ISO 15118-1 / DIN SPEC 91286 ("Check
//! digit calculation for contract IDs"), which catches every single-character error and every
//! swap of neighbours. Each of the 36 characters is split into a pair of bits `q` (its index
//! divided by 9, in binary) and a pair of base-3 digits `r` (its index modulo 9, in base 3). The
//! 14 `q` pairs are weighted with the powers `P1^1..P1^14` of `P1 = [[0,1],[1,1]]` over GF(2),
//! the `r` pairs with the powers of `P2 = [[0,1],[1,2]]` over GF(3); the check character is the
//! one whose own `q` and `r` (weighted with the 15th powers) bring both sums to zero.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ValidationError;

/// The characters of an eMAID in the order of their values 0..35.
const ALPHABET: &[u8; 36] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// A 2x2 matrix of small integers; reduced modulo 2 or 3 by the caller.
type Matrix = [[u32; 2]; 2];

const P1: Matrix = [[0, 1], [1, 1]];
const P2: Matrix = [[0, 1], [1, 2]];

fn multiply(a: Matrix, b: Matrix, modulus: u32) -> Matrix {
    let mut out = [[0; 2]; 2];
    for (i, row) in out.iter_mut().enumerate() {
        for (j, cell) in row.iter_mut().enumerate() {
            *cell = (a[i][0] * b[0][j] + a[i][1] * b[1][j]) % modulus;
        }
    }
    out
}

/// The row vector `v` times the matrix `m`, modulo `modulus`.
fn weigh(v: [u32; 2], m: Matrix, modulus: u32) -> [u32; 2] {
    [(v[0] * m[0][0] + v[1] * m[1][0]) % modulus, (v[0] * m[0][1] + v[1] * m[1][1]) % modulus]
}

/// The value 0..35 of an eMAID character, in either case.
fn value_of(c: char) -> Option<u32> {
    let upper = c.to_ascii_uppercase();
    ALPHABET.iter().position(|&a| char::from(a) == upper).and_then(|i| u32::try_from(i).ok())
}

/// The check character of the 14 characters `country + provider + instance` (hyphens are not
/// allowed here; letters in either case).
pub fn check_character(body: &str) -> Result<char, ValidationError> {
    let chars: Vec<char> = body.chars().collect();
    if chars.len() != 14 {
        return Err(ValidationError::new(
            "contract_id",
            format!("{body:?} is not 14 characters without the check character"),
        ));
    }
    // Sums of q_i * P1^i (mod 2) and r_i * P2^i (mod 3) over the 14 characters, i = 1..14.
    let mut q_sum = [0u32; 2];
    let mut r_sum = [0u32; 2];
    let mut p1_power = P1;
    let mut p2_power = P2;
    for c in chars {
        let value = value_of(c)
            .ok_or_else(|| ValidationError::new("contract_id", format!("{c:?} is not a letter or digit")))?;
        let quotient = value / 9;
        let remainder = value % 9;
        let q = [quotient / 2, quotient % 2];
        let r = [remainder / 3, remainder % 3];
        let qw = weigh(q, p1_power, 2);
        let rw = weigh(r, p2_power, 3);
        q_sum = [(q_sum[0] + qw[0]) % 2, (q_sum[1] + qw[1]) % 2];
        r_sum = [(r_sum[0] + rw[0]) % 3, (r_sum[1] + rw[1]) % 3];
        p1_power = multiply(p1_power, P1, 2);
        p2_power = multiply(p2_power, P2, 3);
    }
    // The check character's pairs solve q_15 * P1^15 = -q_sum and r_15 * P2^15 = -r_sum. P1 has
    // order 3 over GF(2), so P1^15 = I and -1 = 1: q_15 = q_sum. P2 has order 8 over GF(3), so
    // P2^-15 = P2 and r_15 = -r_sum * P2.
    let q = q_sum;
    let r = weigh([(3 - r_sum[0]) % 3, (3 - r_sum[1]) % 3], P2, 3);
    let value = (q[0] * 2 + q[1]) * 9 + r[0] * 3 + r[1];
    let index =
        usize::try_from(value).map_err(|_| ValidationError::new("contract_id", "check character out of range"))?;
    Ok(char::from(ALPHABET[index]))
}

/// A validated eMAID, kept in upper case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Emaid {
    /// The 14 characters before the check character.
    body: String,
    check: char,
}

impl Emaid {
    /// Builds an eMAID from its parts and computes the check character.
    pub fn new(country_code: &str, provider_id: &str, instance: &str) -> Result<Self, ValidationError> {
        check_parts(country_code, provider_id, instance)?;
        let body = format!("{country_code}{provider_id}{instance}").to_ascii_uppercase();
        let check = check_character(&body)?;
        Ok(Self { body, check })
    }

    /// Reads an eMAID with or without hyphens (`NL-ABC-C12345678-X`, `NLABCC12345678X`) in any
    /// case; the check character must be present and right.
    pub fn parse(value: &str) -> Result<Self, ValidationError> {
        let trimmed = value.trim();
        let parts: Vec<&str> = trimmed.split('-').collect();
        let compact: String = match parts.as_slice() {
            [whole] => (*whole).to_owned(),
            [country, provider, instance, check] => {
                if country.len() != 2 || provider.len() != 3 || instance.len() != 9 || check.len() != 1 {
                    return Err(ValidationError::new(
                        "contract_id",
                        format!("{trimmed:?} is not an eMAID (CC-PPP-IIIIIIIII-C)"),
                    ));
                }
                parts.concat()
            }
            _ => {
                return Err(ValidationError::new(
                    "contract_id",
                    format!("{trimmed:?} is not an eMAID (CC-PPP-IIIIIIIII-C)"),
                ));
            }
        };
        if compact.len() != 15 || !compact.is_ascii() {
            return Err(ValidationError::new(
                "contract_id",
                format!("{trimmed:?} is not an eMAID: 15 letters and digits with the check character"),
            ));
        }
        let (body, given) = compact.split_at(14);
        check_parts(&body[..2], &body[2..5], &body[5..])?;
        let body = body.to_ascii_uppercase();
        let check = check_character(&body)?;
        let given = given.chars().next().map(|c| c.to_ascii_uppercase());
        if given != Some(check) {
            return Err(ValidationError::new(
                "contract_id",
                format!("{trimmed:?} has a wrong check character (expected {check})"),
            ));
        }
        Ok(Self { body, check })
    }

    pub fn country_code(&self) -> &str {
        &self.body[..2]
    }

    pub fn provider_id(&self) -> &str {
        &self.body[2..5]
    }

    pub fn instance(&self) -> &str {
        &self.body[5..]
    }

    pub fn check(&self) -> char {
        self.check
    }

    /// Without hyphens: `NLABCC12345678X` (the form ISO 15118-2 sends between car and charger).
    pub fn compact(&self) -> String {
        format!("{}{}", self.body, self.check)
    }
}

fn check_parts(country_code: &str, provider_id: &str, instance: &str) -> Result<(), ValidationError> {
    if country_code.len() != 2 || !country_code.chars().all(|c| c.is_ascii_alphabetic()) {
        return Err(ValidationError::new("contract_id", format!("country code {country_code:?} is not two letters")));
    }
    if provider_id.len() != 3 || !provider_id.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(ValidationError::new(
            "contract_id",
            format!("provider id {provider_id:?} is not three letters or digits"),
        ));
    }
    if instance.len() != 9 || !instance.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(ValidationError::new(
            "contract_id",
            format!("instance {instance:?} is not nine letters or digits"),
        ));
    }
    Ok(())
}

/// With hyphens: `NL-ABC-C12345678-X`, the form OCPI `contract_id` carries.
impl fmt::Display for Emaid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{}-{}", self.country_code(), self.provider_id(), self.instance(), self.check)
    }
}

impl TryFrom<String> for Emaid {
    type Error = ValidationError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Emaid> for String {
    fn from(value: Emaid) -> String {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The examples published with the algorithm ("Check digit calculation for contract IDs",
    /// the annex to DIN SPEC 91286 / ISO 15118-1), 14 characters and their check character.
    const PUBLISHED: [(&str, char); 8] = [
        ("NN123ABCDEFGHI", 'T'),
        ("FRXYZ123456789", '2'),
        ("ITA1B2C3E4F5G6", '4'),
        ("ESZU8WOX834H1D", 'R'),
        ("PT73902837ABCZ", 'Z'),
        ("DE83DUIEN83QGZ", 'D'),
        ("DE83DUIEN83ZGQ", 'M'),
        ("DE8AA001234567", '0'),
    ];

    #[test]
    fn computes_the_published_check_characters() {
        for (body, expected) in PUBLISHED {
            assert_eq!(check_character(body).unwrap(), expected, "{body}");
            assert_eq!(check_character(&body.to_ascii_lowercase()).unwrap(), expected, "{body} in lower case");
        }
    }

    #[test]
    fn validates_the_published_examples_in_every_spelling() {
        for (body, check) in PUBLISHED {
            let hyphenated = format!("{}-{}-{}-{}", &body[..2], &body[2..5], &body[5..], check);
            let emaid = Emaid::parse(&hyphenated).unwrap();
            assert_eq!(emaid.to_string(), hyphenated);
            assert_eq!(Emaid::parse(&format!("{body}{check}")).unwrap(), emaid);
            assert_eq!(Emaid::parse(&hyphenated.to_ascii_lowercase()).unwrap(), emaid);
        }
        // A real eMAID printed on a card of The New Motion.
        assert_eq!(Emaid::parse("NL-TNM-000122045-U").unwrap().compact(), "NLTNM000122045U");
    }

    #[test]
    fn catches_every_single_error_and_neighbour_swap() {
        let (body, check) = PUBLISHED[0];
        let right: Vec<char> = format!("{body}{check}").chars().collect();
        for position in 0..15 {
            for replacement in ALPHABET.iter().map(|&b| char::from(b)) {
                if replacement == right[position] || (position < 2 && replacement.is_ascii_digit()) {
                    continue;
                }
                let mut wrong = right.clone();
                wrong[position] = replacement;
                let wrong: String = wrong.into_iter().collect();
                assert!(Emaid::parse(&wrong).is_err(), "{wrong} must be refused");
            }
        }
        for position in 2..14 {
            let mut swapped = right.clone();
            if swapped[position] == swapped[position + 1] {
                continue;
            }
            swapped.swap(position, position + 1);
            let swapped: String = swapped.into_iter().collect();
            assert!(Emaid::parse(&swapped).is_err(), "{swapped} must be refused");
        }
    }

    #[test]
    fn builds_from_parts_and_refuses_bad_ones() {
        let emaid = Emaid::new("nl", "abc", "C12345678").unwrap();
        assert_eq!(emaid.country_code(), "NL");
        assert_eq!(emaid.instance(), "C12345678");
        assert_eq!(emaid.check(), check_character("NLABCC12345678").unwrap());
        assert_eq!(Emaid::parse(&emaid.to_string()).unwrap(), emaid);
        let json = serde_json::to_string(&emaid).unwrap();
        assert_eq!(serde_json::from_str::<Emaid>(&json).unwrap(), emaid);

        assert!(Emaid::new("N1", "ABC", "C12345678").is_err(), "country code of letters");
        assert!(Emaid::new("NL", "AB", "C12345678").is_err());
        assert!(Emaid::new("NL", "ABC", "C1234567").is_err());
        assert!(Emaid::new("NL", "ABC", "C1234567é").is_err());
        assert!(Emaid::parse("NL-ABC-C12345678").is_err(), "the check character is required");
        assert!(Emaid::parse("NL-ABCC-12345678-X").is_err());
        assert!(Emaid::parse("NL*ABC*C12345678*X").is_err());
        assert!(Emaid::parse("").is_err());
        assert!(Emaid::parse("NLABCC1234567éX").is_err());
        assert!(check_character("NLABC").is_err());
        assert!(check_character("NLABC_12345678").is_err());
    }
}
