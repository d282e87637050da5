//! Typo-tolerant text search over name, address, city, postal code and operator.
//!
//! Why not tantivy: the fields are a handful of short words per location, results must reflect an
//! upsert at once (tantivy makes writes visible only after a commit and a reader reload), and the
//! index is always intersected with a geographic area and live filters that tantivy cannot see. A
//! small inverted index of our own (term -> sorted slots) plus a deletion neighbourhood for fuzzy
//! lookup (SymSpell: every term and every term with one character deleted, so two words within one
//! edit share a key) answers a typical query in microseconds, updates in place, and stays small.
//!
//! Matching: every query word must match a word of the location, exactly, as the prefix of a word
//! (the last query word only, as the user is still typing) or within an edit distance of 1 (words
//! of 4-7 letters) or 2 (8 letters or more; found through one deletion on each side). Relevance adds,
//! per query word, the best match quality times the field weight times the word's rarity (IDF).

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, Hash, Hasher};

use crate::record::LocationRecord;

/// Fields a word can come from, as bits of a mask.
pub const FIELD_NAME: u8 = 1;
pub const FIELD_ADDRESS: u8 = 2;
pub const FIELD_CITY: u8 = 4;
pub const FIELD_POSTAL: u8 = 8;
pub const FIELD_OPERATOR: u8 = 16;

fn field_weight(fields: u8) -> f32 {
    [(FIELD_NAME, 1.0), (FIELD_POSTAL, 0.9), (FIELD_OPERATOR, 0.8), (FIELD_CITY, 0.7), (FIELD_ADDRESS, 0.6)]
        .into_iter()
        .find(|(bit, _)| fields & bit != 0)
        .map_or(0.5, |(_, weight)| weight)
}

/// Longest query, in words, that is scored; more words only make the query slower.
pub const MAX_QUERY_WORDS: usize = 8;

/// Lower case, diacritics folded, split on anything that is not a letter or digit.
pub fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for c in text.chars() {
        if c.is_alphanumeric() {
            for lower in c.to_lowercase() {
                fold(lower, &mut current);
            }
        } else if !current.is_empty() {
            out.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

fn fold(c: char, out: &mut String) {
    let plain = match c {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ą' | 'ă' => "a",
        'æ' => "ae",
        'ç' | 'ć' | 'č' => "c",
        'ď' | 'đ' => "d",
        'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ė' | 'ę' | 'ě' => "e",
        'ğ' => "g",
        'ì' | 'í' | 'î' | 'ï' | 'ı' | 'ī' | 'į' => "i",
        'ł' | 'ľ' | 'ĺ' => "l",
        'ñ' | 'ń' | 'ň' => "n",
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ő' => "o",
        'œ' => "oe",
        'ř' | 'ŕ' => "r",
        'ß' => "ss",
        'ś' | 'š' | 'ş' | 'ș' => "s",
        'ť' | 'ţ' | 'ț' => "t",
        'ù' | 'ú' | 'û' | 'ü' | 'ū' | 'ů' | 'ű' | 'ų' => "u",
        'ý' | 'ÿ' => "y",
        'ź' | 'ż' | 'ž' => "z",
        other => {
            out.push(other);
            return;
        }
    };
    out.push_str(plain);
}

/// The words of a location, each with the fields it appears in.
pub fn location_terms(record: &LocationRecord) -> Vec<(String, u8)> {
    let mut terms: BTreeMap<String, u8> = BTreeMap::new();
    let fields = [
        (record.name.as_deref(), FIELD_NAME),
        (Some(&*record.address), FIELD_ADDRESS),
        (Some(&*record.city), FIELD_CITY),
        (record.postal_code.as_deref(), FIELD_POSTAL),
        (record.operator.as_deref(), FIELD_OPERATOR),
    ];
    for (text, field) in fields {
        for word in words(text.unwrap_or_default()) {
            *terms.entry(word).or_default() |= field;
        }
    }
    // A postal code such as "1012 AB" is also searched as "1012ab".
    if let Some(code) = record.postal_code.as_deref() {
        let joined: String = words(code).concat();
        if !joined.is_empty() {
            *terms.entry(joined).or_default() |= FIELD_POSTAL;
        }
    }
    terms.into_iter().collect()
}

fn max_edits(len: usize) -> usize {
    match len {
        0..=3 => 0,
        4..=7 => 1,
        _ => 2,
    }
}

/// A fixed-key hasher, so deletion keys are the same in every process.
#[derive(Default, Clone, Copy)]
struct FixedState;

impl BuildHasher for FixedState {
    type Hasher = std::collections::hash_map::DefaultHasher;
    fn build_hasher(&self) -> Self::Hasher {
        std::collections::hash_map::DefaultHasher::new()
    }
}

fn hash_chars(chars: impl Iterator<Item = char>) -> u64 {
    let mut hasher = FixedState.build_hasher();
    for c in chars {
        c.hash(&mut hasher);
    }
    hasher.finish()
}

/// The term itself and every variant with one character deleted.
fn deletion_keys(term: &str) -> Vec<u64> {
    let chars: Vec<char> = term.chars().collect();
    let mut keys = vec![hash_chars(chars.iter().copied())];
    for skip in 0..chars.len() {
        let key = hash_chars(chars.iter().enumerate().filter(|(i, _)| *i != skip).map(|(_, c)| *c));
        keys.push(key);
    }
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// Optimal string alignment distance, giving up above `limit`.
fn edit_distance(a: &[char], b: &[char], limit: usize) -> Option<usize> {
    if a.len().abs_diff(b.len()) > limit {
        return None;
    }
    let width = b.len() + 1;
    let mut rows = vec![0usize; width * (a.len() + 1)];
    for (j, cell) in rows.iter_mut().enumerate().take(width) {
        *cell = j;
    }
    for i in 1..=a.len() {
        rows[i * width] = i;
        let mut row_min = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (rows[(i - 1) * width + j] + 1).min(rows[i * width + j - 1] + 1);
            best = best.min(rows[(i - 1) * width + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(rows[(i - 2) * width + j - 2] + 1);
            }
            rows[i * width + j] = best;
            row_min = row_min.min(best);
        }
        if row_min > limit {
            return None;
        }
    }
    let distance = rows[a.len() * width + b.len()];
    (distance <= limit).then_some(distance)
}

#[derive(Default)]
pub struct TextIndex {
    terms: Vec<Box<str>>,
    by_term: BTreeMap<Box<str>, u32>,
    /// term id -> slots holding it, ascending.
    postings: Vec<Vec<u32>>,
    deletions: HashMap<u64, Vec<u32>>,
    /// slot -> its terms with their field masks, for scoring and removal.
    slot_terms: Vec<Box<[(u32, u8)]>>,
    documents: usize,
}

/// A parsed query: per query word, the matching terms with a match quality in 0..1.
pub struct TextQuery {
    words: Vec<HashMap<u32, f32>>,
    idf: Vec<f32>,
}

impl TextIndex {
    fn term_id(&mut self, term: &str) -> u32 {
        if let Some(id) = self.by_term.get(term) {
            return *id;
        }
        let id = self.terms.len() as u32;
        self.terms.push(Box::from(term));
        self.by_term.insert(Box::from(term), id);
        self.postings.push(Vec::new());
        if max_edits(term.chars().count()) > 0 {
            for key in deletion_keys(term) {
                self.deletions.entry(key).or_default().push(id);
            }
        }
        id
    }

    /// Indexes a slot's words; the slot must not be indexed already.
    pub fn insert(&mut self, slot: u32, record: &LocationRecord) {
        let terms: Vec<(u32, u8)> =
            location_terms(record).into_iter().map(|(term, fields)| (self.term_id(&term), fields)).collect();
        for (term, _) in &terms {
            let posting = &mut self.postings[*term as usize];
            // Slots only grow, so this is nearly always a push.
            match posting.last() {
                Some(last) if *last > slot => {
                    if let Err(at) = posting.binary_search(&slot) {
                        posting.insert(at, slot);
                    }
                }
                _ => posting.push(slot),
            }
        }
        let index = slot as usize;
        if self.slot_terms.len() <= index {
            self.slot_terms.resize_with(index + 1, Default::default);
        }
        self.slot_terms[index] = terms.into_boxed_slice();
        self.documents += 1;
    }

    pub fn remove(&mut self, slot: u32) {
        let Some(terms) = self.slot_terms.get_mut(slot as usize) else {
            return;
        };
        let terms = std::mem::take(terms);
        if terms.is_empty() {
            return;
        }
        for (term, _) in terms.iter() {
            let posting = &mut self.postings[*term as usize];
            if let Ok(at) = posting.binary_search(&slot) {
                posting.remove(at);
            }
        }
        self.documents = self.documents.saturating_sub(1);
    }

    /// Parses a query; `None` when it has no words.
    pub fn parse(&self, text: &str) -> Option<TextQuery> {
        let mut query_words = words(text);
        query_words.truncate(MAX_QUERY_WORDS);
        let last = query_words.len().checked_sub(1)?;
        let mut matches = Vec::with_capacity(query_words.len());
        let mut idf = Vec::with_capacity(query_words.len());
        for (index, word) in query_words.iter().enumerate() {
            let mut found: HashMap<u32, f32> = HashMap::new();
            let add = |found: &mut HashMap<u32, f32>, id: u32, quality: f32| {
                let entry = found.entry(id).or_insert(0.0);
                *entry = entry.max(quality);
            };
            if let Some(id) = self.by_term.get(word.as_str()) {
                add(&mut found, *id, 1.0);
            }
            let chars: Vec<char> = word.chars().collect();
            if index == last && chars.len() >= 2 {
                // Type-ahead: bounded, so a two-letter prefix cannot expand to the whole vocabulary.
                for (term, id) in self
                    .by_term
                    .range::<str, _>((std::ops::Bound::Included(word.as_str()), std::ops::Bound::Unbounded))
                    .take_while(|(term, _)| term.starts_with(word.as_str()))
                    .take(256)
                {
                    if term.len() > word.len() {
                        add(&mut found, *id, 0.75);
                    }
                }
            }
            let limit = max_edits(chars.len());
            if limit > 0 {
                for key in deletion_keys(word) {
                    for id in self.deletions.get(&key).into_iter().flatten() {
                        let term: Vec<char> = self.terms[*id as usize].chars().collect();
                        if let Some(distance) = edit_distance(&chars, &term, limit)
                            && distance > 0
                        {
                            add(&mut found, *id, if distance == 1 { 0.6 } else { 0.4 });
                        }
                    }
                }
            }
            let df: usize = found.keys().map(|id| self.postings[*id as usize].len()).max().unwrap_or(0);
            idf.push((1.0 + self.documents as f32 / (1.0 + df as f32)).ln());
            matches.push(found);
        }
        Some(TextQuery { words: matches, idf })
    }

    /// Slots that may match and that `keep` keeps: the postings of the query word with the fewest,
    /// ascending.
    pub fn candidates(&self, query: &TextQuery, mut keep: impl FnMut(u32) -> bool) -> Vec<u32> {
        let smallest = query
            .words
            .iter()
            .min_by_key(|word| word.keys().map(|id| self.postings[*id as usize].len()).sum::<usize>());
        let Some(word) = smallest else {
            return Vec::new();
        };
        // Filter before the union: the filter (an area) usually keeps few of many postings.
        let mut slots: Vec<u32> =
            word.keys().flat_map(|id| self.postings[*id as usize].iter().copied()).filter(|slot| keep(*slot)).collect();
        // One term's postings are sorted and distinct already; only a union needs the sort.
        if word.len() > 1 {
            slots.sort_unstable();
            slots.dedup();
        }
        slots
    }

    /// How many slots [`candidates`](Self::candidates) would return at most.
    pub fn candidate_estimate(&self, query: &TextQuery) -> usize {
        query
            .words
            .iter()
            .map(|word| word.keys().map(|id| self.postings[*id as usize].len()).sum::<usize>())
            .min()
            .unwrap_or(0)
    }

    /// Relevance of a slot, or `None` when some query word matches none of its words.
    pub fn score(&self, query: &TextQuery, slot: u32) -> Option<f32> {
        let terms = self.slot_terms.get(slot as usize)?;
        let mut total = 0.0;
        for (word, idf) in query.words.iter().zip(&query.idf) {
            let mut best = 0.0f32;
            for (term, fields) in terms.iter() {
                if let Some(quality) = word.get(term) {
                    best = best.max(quality * field_weight(*fields));
                }
            }
            if best == 0.0 {
                return None;
            }
            total += best * idf;
        }
        Some(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_fold_case_and_diacritics() {
        assert_eq!(words("Düsseldorf, Königsallee 1"), ["dusseldorf", "konigsallee", "1"]);
        assert_eq!(words("  Straße--Łódź "), ["strasse", "lodz"]);
    }

    #[test]
    fn edit_distance_counts_transpositions_as_one() {
        let chars = |s: &str| s.chars().collect::<Vec<_>>();
        assert_eq!(edit_distance(&chars("amsterdam"), &chars("amsterdma"), 2), Some(1));
        assert_eq!(edit_distance(&chars("amsterdam"), &chars("amstrdam"), 2), Some(1));
        assert_eq!(edit_distance(&chars("amsterdam"), &chars("rotterdam"), 2), None);
    }
}
