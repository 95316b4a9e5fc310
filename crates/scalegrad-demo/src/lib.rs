//! The generator of the embedded demo corpora (`datasets/`).
//!
//! Everything here is written by this project: templates, word lists and a seeded
//! random choice among them. No text is taken from WikiText, CNN/DailyMail or any other
//! corpus; only the *shape* of their rows is imitated:
//!
//! - WikiText-like articles: rows in WikiText's raw style, `" = Title = \n"`, blank rows
//!   around headers, `" = = Section = = \n"`, `" = = = Subsection = = = \n"`, one row per
//!   paragraph ending in `" \n"`, punctuation split off by spaces, and `@-@`, `@,@`,
//!   `@.@` inside hyphenated words and numbers.
//! - CNN/DailyMail-like news: an `article` of a dozen sentences about one event, its
//!   `highlights` (three or four sentences joined by `\n`, copied or paraphrased from
//!   the article's key sentences, so an extractive or abstractive summariser can score
//!   ROUGE on them), and a 40-hex-digit `id`.
//!
//! The random source is ChaCha8 with `scalegrad-data`'s bounded sampling
//! (`scalegrad_data::batch::below`), so the same seed gives byte-identical files on every
//! machine. `cargo run -p scalegrad-demo --example make_demo_data` rewrites `datasets/`.
//!
//! A crate of its own (mostly word lists) so that the library the CLI links does not
//! carry it: only the generator, `scalegrad-data`'s tests and its data benchmark use it.

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;

/// A seeded chooser.
pub struct Gen {
    rng: ChaCha8Rng,
}

impl Gen {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// A uniform integer in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + scalegrad_data::batch::below(&mut self.rng, hi - lo + 1)
    }

    /// True with probability `percent / 100`.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.range(0, 99) < percent
    }

    /// One item of a non-empty list.
    pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.range(0, items.len() as u64 - 1) as usize]
    }

    fn hex(&mut self, digits: usize) -> String {
        (0..digits)
            .map(|_| char::from_digit(self.range(0, 15) as u32, 16).expect("hex digit"))
            .collect()
    }

    fn word_from_syllables(&mut self, min: u64, max: u64) -> String {
        let n = self.range(min, max);
        let mut w = String::new();
        for _ in 0..n {
            w.push_str(self.pick(SYLLABLES));
        }
        w
    }

    /// A capitalised invented name of 2-3 syllables.
    pub fn name(&mut self) -> String {
        capitalise(&self.word_from_syllables(2, 3))
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

const SYLLABLES: &[&str] = &[
    "ka", "lo", "mi", "ren", "dar", "vel", "tor", "an", "is", "bel", "cor", "dun", "el", "fa",
    "gar", "hal", "ith", "jor", "kel", "lun", "mar", "nor", "os", "pel", "quin", "ras", "sol",
    "tam", "ur", "val", "wen", "zan", "bra", "cle", "dro", "fen", "gri", "hol", "ly", "mor", "nat",
    "ox", "pri", "rin", "sca", "thu", "vin", "wy", "ber", "cas", "del", "est", "fir", "ga", "ton",
    "ley", "ford", "ham", "wick", "ster", "mont", "ville", "ra", "ne", "si", "do",
];

const FIRST_NAMES: &[&str] = &[
    "James", "Maria", "Thomas", "Elena", "Samuel", "Grace", "Daniel", "Amira", "Oliver", "Hannah",
    "Victor", "Lucia", "George", "Nadia", "Henry", "Chloe", "Arthur", "Ingrid", "Robert", "Priya",
    "Walter", "Sofia", "Edward", "Mei", "Frank", "Rosa", "Harold", "Julia", "Peter", "Alice",
    "Martin", "Leila", "Simon", "Clara", "Oscar", "Irene", "Louis", "Nora",
];

const SURNAMES: &[&str] = &[
    "Harlow",
    "Brennan",
    "Okafor",
    "Lindqvist",
    "Moreau",
    "Castell",
    "Whitfield",
    "Tanaka",
    "Radek",
    "Osei",
    "Fairbanks",
    "Delgado",
    "Marsh",
    "Kowal",
    "Ashdown",
    "Varga",
    "Pryce",
    "Lennox",
    "Quill",
    "Sato",
    "Holloway",
    "Ferreira",
    "Dunmore",
    "Achebe",
    "Stroud",
    "Novak",
];

const COUNTRIES: &[&str] = &[
    "England",
    "Scotland",
    "Canada",
    "Australia",
    "Ireland",
    "New Zealand",
    "France",
    "Germany",
    "Norway",
    "Portugal",
    "Chile",
    "Kenya",
    "Japan",
    "Poland",
    "Brazil",
    "Wales",
];

const MONTHS: &[&str] = &[
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

const DAYS: &[&str] = &[
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

const ADJECTIVES: &[&str] = &[
    "large",
    "small",
    "notable",
    "early",
    "modern",
    "rural",
    "coastal",
    "northern",
    "southern",
    "eastern",
    "western",
    "central",
    "historic",
    "popular",
    "prominent",
    "brief",
    "major",
    "minor",
    "successful",
    "difficult",
    "unusual",
    "important",
    "narrow",
    "broad",
    "ancient",
    "local",
    "regional",
    "national",
    "wooden",
    "stone",
    "heavy",
    "light",
    "rapid",
    "steady",
];

const NOUNS: &[&str] = &[
    "river", "valley", "church", "bridge", "harbour", "railway", "school", "market", "castle",
    "village", "forest", "museum", "station", "factory", "mill", "tower", "garden", "road",
    "canal", "lake", "island", "hill", "library", "theatre", "hospital", "farm", "mine",
];

const INSTRUMENTS: &[&str] = &[
    "guitar", "piano", "violin", "drums", "bass", "cello", "organ",
];

const GENRES: &[&str] = &[
    "folk",
    "rock",
    "jazz",
    "blues",
    "country",
    "electronic",
    "pop",
    "soul",
    "punk",
];

const REVIEWS: &[&str] = &[
    "praised its production and lyrics",
    "described it as uneven but ambitious",
    "called it the band 's strongest work",
    "criticised its length",
    "noted the influence of earlier records",
    "singled out the title track",
];

const ROLES: &[&str] = &[
    "defender",
    "midfielder",
    "forward",
    "goalkeeper",
    "winger",
    "captain",
];

const SHIP_TYPES: &[&str] = &[
    "destroyer",
    "cruiser",
    "frigate",
    "sloop",
    "corvette",
    "gunboat",
];

const STORM_KINDS: &[&str] = &["tropical storm", "hurricane", "cyclone", "typhoon"];

/// Formats a number as WikiText does: `12 @,@ 345`, `3 @.@ 5`.
fn wiki_number(n: u64) -> String {
    let s = n.to_string();
    if s.len() <= 3 {
        return s;
    }
    let mut groups = Vec::new();
    let mut end = s.len();
    while end > 0 {
        let start = end.saturating_sub(3);
        groups.push(&s[start..end]);
        end = start;
    }
    groups.reverse();
    groups.join(" @,@ ")
}

/// Formats a number as news text does: `12,345`.
fn news_number(n: u64) -> String {
    wiki_number(n).replace(" @,@ ", ",")
}

/// Splits a sentence written naturally into WikiText's spacing: spaces around
/// punctuation and `@-@` for hyphens inside words.
fn wiki_spacing(sentence: &str) -> String {
    let mut out = String::with_capacity(sentence.len() + 16);
    let chars: Vec<char> = sentence.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        match c {
            ',' | '.' | ';' | ':' | '(' | ')' | '"' => {
                // Keep the WikiText number separators written as `@,@` / `@.@`.
                let in_at = i > 0 && chars[i - 1] == '@';
                if in_at {
                    out.push(c);
                } else {
                    out.push(' ');
                    out.push(c);
                    out.push(' ');
                }
            }
            '-' if i > 0 && chars[i - 1].is_alphanumeric() => out.push_str(" @-@ "),
            '\'' if i + 1 < chars.len() && chars[i + 1] == 's' => out.push_str(" '"),
            _ => out.push(c),
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// "a important" -> "an important" (the templates put "a" before random adjectives).
fn fix_articles(sentence: &str) -> String {
    let words: Vec<&str> = sentence.split(' ').collect();
    let mut out = Vec::with_capacity(words.len());
    for (i, w) in words.iter().enumerate() {
        let next_vowel = words
            .get(i + 1)
            .and_then(|n| n.chars().next())
            .is_some_and(|c| "aeiouAEIOU".contains(c));
        match *w {
            "a" if next_vowel => out.push("an"),
            "A" if next_vowel => out.push("An"),
            other => out.push(other),
        }
    }
    out.join(" ")
}

/// A deck of template numbers drawn without replacement and reshuffled when empty, so
/// an article uses each template about equally often instead of repeating one.
struct Deck {
    cards: Vec<u64>,
}

impl Deck {
    fn draw(&mut self, g: &mut Gen) -> u64 {
        if self.cards.is_empty() {
            self.cards = (0..WIKI_TEMPLATES).collect();
        }
        let i = g.range(0, self.cards.len() as u64 - 1) as usize;
        self.cards.swap_remove(i)
    }
}

/// The subject of one WikiText-like article and the facts its sentences reuse.
struct Subject {
    kind: usize,
    title: String,
    place: String,
    country: &'static str,
    person: String,
    year: u64,
    other: String,
}

fn subject(g: &mut Gen) -> Subject {
    let kind = g.range(0, 5) as usize;
    let place = g.name();
    let person = format!("{} {}", g.pick(FIRST_NAMES), g.pick(SURNAMES));
    let other = g.name();
    let title = match kind {
        0 => person.clone(),
        1 => place.clone(),
        2 => format!("HMS {}", g.name()),
        3 => format!("{} ( album )", g.name()),
        4 => format!("{} {}", capitalise(g.pick(STORM_KINDS)), g.name()),
        _ => format!("{} {}", place, capitalise(g.pick(NOUNS))),
    };
    Subject {
        kind,
        title,
        place,
        country: g.pick(COUNTRIES),
        person,
        year: g.range(1790, 2015),
        other,
    }
}

/// Kind-specific templates are 0..4, shared ones 4..WIKI_TEMPLATES.
const WIKI_TEMPLATES: u64 = 20;

const VERBS_PAST: &[&str] = &[
    "built",
    "enlarged",
    "repaired",
    "closed",
    "reopened",
    "demolished",
    "sold",
    "restored",
    "extended",
    "renamed",
    "surveyed",
    "painted",
];

const MEANINGS: &[&str] = &[
    "high meadow",
    "stone ford",
    "grey hill",
    "salt marsh",
    "the bend of the river",
    "the old farm",
    "bright water",
    "the long field",
    "the watch tower",
    "the iron gate",
];

fn wiki_sentence(g: &mut Gen, s: &Subject, section: &str, template: u64) -> String {
    let year = s.year + g.range(0, 40);
    let n = g.range(2, 90_000);
    let adj = g.pick(ADJECTIVES);
    let noun = g.pick(NOUNS);
    let month = g.pick(MONTHS);
    let t = &s.title;
    let adj2 = g.pick(ADJECTIVES);
    let noun2 = g.pick(NOUNS);
    let verb = g.pick(VERBS_PAST);
    let later = year + g.range(3, 45);
    let sentence = match (s.kind, template) {
        (0, 0) => format!(
            "{t} was born in {} , {} , in {month} {year}.",
            s.place, s.country
        ),
        (0, 1) => format!(
            "He played as a {} for {} before moving to {} in {year}.",
            g.pick(ROLES),
            s.other,
            g.name()
        ),
        (0, 2) => format!(
            "In {year} {} was appointed to the {adj} committee of the {noun} trust.",
            s.person
        ),
        (0, 3) => format!(
            "{} later wrote that the years in {} were the most {adj} of his life.",
            s.person, s.place
        ),
        (1, 0) => format!(
            "{t} is a {adj} town in {} with a population of {}.",
            s.country,
            wiki_number(n)
        ),
        (1, 1) => format!(
            "The {noun} was built in {year} and rebuilt after a fire in {}.",
            year + g.range(5, 60)
        ),
        (1, 2) => format!(
            "The town lies on the {} {noun} , about {} kilometres from {}.",
            adj,
            g.range(3, 120),
            s.other
        ),
        (1, 3) => format!(
            "By {year} the {noun} employed {} people , most of them from nearby villages.",
            wiki_number(g.range(20, 4000))
        ),
        (2, 0) => format!(
            "{t} was a {} of the Royal Navy , launched in {month} {year}.",
            g.pick(SHIP_TYPES)
        ),
        (2, 1) => format!(
            "She displaced {} long tons and carried a crew of {}.",
            wiki_number(g.range(400, 9000)),
            g.range(80, 700)
        ),
        (2, 2) => format!(
            "In {year} she was assigned to the {adj} squadron based at {}.",
            s.place
        ),
        (2, 3) => format!(
            "The ship was sold for scrap in {} after {} years of service.",
            year + g.range(10, 30),
            g.range(10, 30)
        ),
        (3, 0) => format!(
            "{t} is the {} studio album by the {} band {}.",
            g.pick(&["first", "second", "third", "fourth", "fifth"]),
            g.pick(GENRES),
            s.other
        ),
        (3, 1) => format!(
            "It was recorded in {} over {} weeks in {year} , with {} on {}.",
            s.place,
            g.range(2, 12),
            s.person,
            g.pick(INSTRUMENTS)
        ),
        (3, 2) => format!(
            "Critics {} when it was released in {month} {year}.",
            g.pick(REVIEWS)
        ),
        (3, 3) => format!(
            "The album sold {} copies in its first week and reached number {} on the chart.",
            wiki_number(n),
            g.range(1, 40)
        ),
        (4, 0) => format!(
            "{t} formed near {} in {month} {year} and moved slowly towards the {adj} coast.",
            s.place
        ),
        (4, 1) => format!(
            "Winds reached {} km / h ( {} mph ) before the storm weakened.",
            g.range(60, 280),
            g.range(40, 175)
        ),
        (4, 2) => format!(
            "Flooding damaged {} homes and closed the {noun} for {} days.",
            wiki_number(g.range(10, 20000)),
            g.range(2, 30)
        ),
        (4, 3) => format!(
            "Damage was estimated at $ {} million , and {} people were killed.",
            g.range(1, 900),
            g.range(0, 60)
        ),
        (5, 0) => format!("{t} is a {adj} {noun} in {} , {}.", s.place, s.country),
        (5, 1) => format!(
            "Construction began in {year} to a design by the architect {}.",
            s.person
        ),
        (5, 2) => format!(
            "The building is {} metres long and its tower rises {} metres.",
            g.range(20, 300),
            g.range(10, 90)
        ),
        (5, 3) => format!(
            "It was restored in {} with funds raised by the {} society.",
            year + g.range(20, 100),
            s.other
        ),
        (_, 4) => {
            format!("The {section} of {t} is described in several {adj} sources from {year}.")
        }
        (_, 5) => format!(
            "According to {} , the {noun} near {} was {adj} by the standards of the time.",
            s.person, s.place
        ),
        (_, 6) => format!(
            "A {adj} - scale survey in {year} counted {} visitors to the {noun}.",
            wiki_number(n)
        ),
        (_, 7) => format!(
            "The {noun} at {} was {verb} in {year} and again in {later}.",
            s.place
        ),
        (_, 8) => format!(
            "Local newspapers reported that {} people attended the opening of the {noun2}.",
            wiki_number(g.range(40, 30_000))
        ),
        (_, 9) => format!(
            "{} , who had moved to {} in {year} , described the {noun} as {adj} and {adj2}.",
            s.person, s.place
        ),
        (_, 10) => format!(
            "Little is known about the {noun} before {year} , although records mention a {adj} {noun2} nearby."
        ),
        (_, 11) => format!(
            "The name {} is thought to come from an old word meaning \"{}\".",
            s.place,
            g.pick(MEANINGS)
        ),
        (_, 12) => format!(
            "Between {year} and {later} the {noun} changed hands {} times.",
            g.range(2, 9)
        ),
        (_, 13) => format!(
            "In {year} the council of {} approved plans for a new {noun2} costing £ {}.",
            s.other,
            wiki_number(g.range(900, 2_000_000))
        ),
        (_, 14) => format!(
            "{} 's account of the {noun} , published in {later} , remains the main source for this period.",
            s.person
        ),
        (_, 15) => format!(
            "A {adj} {noun} and a {adj2} {noun2} stood close to the road from {} to {}.",
            s.place, s.other
        ),
        (_, 16) => format!(
            "Several buildings were {verb} in {year} , but the {noun} survived almost unchanged."
        ),
        (_, 17) => format!(
            "The {section} was revised in {later} after new evidence came to light in {}.",
            s.country
        ),
        (_, 18) => format!(
            "By {later} the population of {} had grown to {} , many of them working at the {noun}.",
            s.place,
            wiki_number(g.range(300, 120_000))
        ),
        _ => format!(
            "In {month} {year} a {adj} {noun} was opened at {} by {}.",
            s.other, s.person
        ),
    };
    let sentence = fix_articles(&sentence);
    wiki_spacing(&sentence)
}

const SECTIONS: &[&[&str]] = &[
    &[
        "Early life",
        "Career",
        "Later years",
        "Personal life",
        "Legacy",
    ],
    &[
        "History",
        "Geography",
        "Economy",
        "Demographics",
        "Transport",
        "Culture",
    ],
    &["Design", "Construction", "Service history", "Fate"],
    &[
        "Background",
        "Recording",
        "Release",
        "Reception",
        "Track listing",
    ],
    &[
        "Meteorological history",
        "Preparations",
        "Impact",
        "Aftermath",
    ],
    &["History", "Architecture", "Restoration", "Use today"],
];

/// One WikiText-like article, as WikiText rows.
pub fn wikitext_article(g: &mut Gen) -> Vec<String> {
    let s = subject(g);
    let mut rows = vec![String::new(), format!(" = {} = \n", s.title), String::new()];
    let mut deck = Deck { cards: Vec::new() };
    let mut paragraph = |g: &mut Gen, section: &str| {
        let n = g.range(3, 7);
        let sentences: Vec<String> = (0..n)
            .map(|_| {
                let t = deck.draw(g);
                wiki_sentence(g, &s, section, t)
            })
            .collect();
        format!(" {} \n", sentences.join(" "))
    };
    for _ in 0..g.range(1, 2) {
        rows.push(paragraph(g, "introduction"));
    }
    let sections = SECTIONS[s.kind];
    let n_sections = g.range(2, sections.len() as u64);
    for section in &sections[..n_sections as usize] {
        rows.push(String::new());
        rows.push(format!(" = = {section} = = \n"));
        rows.push(String::new());
        for _ in 0..g.range(1, 3) {
            rows.push(paragraph(g, &section.to_lowercase()));
        }
        if g.chance(25) {
            let sub = format!("{} {}", capitalise(g.pick(ADJECTIVES)), g.pick(NOUNS));
            rows.push(String::new());
            rows.push(format!(" = = = {sub} = = = \n"));
            rows.push(String::new());
            rows.push(paragraph(g, &sub.to_lowercase()));
        }
    }
    rows
}

/// WikiText-like rows of `articles` articles.
pub fn wikitext_rows(seed: u64, articles: usize) -> Vec<String> {
    let mut g = Gen::new(seed);
    let mut rows = Vec::new();
    for _ in 0..articles {
        rows.extend(wikitext_article(&mut g));
    }
    rows
}

/// WikiText-like rows of about `bytes` bytes of text in total.
pub fn wikitext_rows_of_size(seed: u64, bytes: usize) -> Vec<String> {
    let mut g = Gen::new(seed);
    let mut rows = Vec::new();
    let mut size = 0;
    while size < bytes {
        for row in wikitext_article(&mut g) {
            size += row.len();
            rows.push(row);
        }
    }
    rows
}

/// One CNN/DailyMail-like row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewsRow {
    /// The article text.
    pub article: String,
    /// Three or four highlight sentences joined by `\n`.
    pub highlights: String,
    /// A 40-hex-digit id.
    pub id: String,
}

struct Story {
    lead: String,
    details: Vec<String>,
    highlights: Vec<String>,
}

fn person(g: &mut Gen) -> String {
    format!("{} {}", g.pick(FIRST_NAMES), g.pick(SURNAMES))
}

fn story(g: &mut Gen) -> (String, Story) {
    let city = g.name();
    let country = g.pick(COUNTRIES);
    let day = g.pick(DAYS);
    let who = person(g);
    let official = person(g);
    let age = g.range(19, 78);
    let n = g.range(2, 950);
    let money = g.range(2, 900);
    let noun = g.pick(NOUNS);
    let org = format!(
        "{} {}",
        g.name(),
        g.pick(&["Group", "Holdings", "Industries", "Labs", "Trust"])
    );
    let kind = g.range(0, 4);
    let s = match kind {
        0 => {
            let crime = g.pick(&[
                "a fire that destroyed the town hall",
                "a robbery at a jewellery shop",
                "a crash that closed the motorway",
                "the theft of a rare painting",
                "a break-in at the local museum",
            ]);
            Story {
                lead: format!(
                    "Police in {city} arrested {who}, {age}, on {day} after {crime}, officials said."
                ),
                details: vec![
                    format!(
                        "Officers were called to the scene shortly after {} a.m.",
                        g.range(1, 11)
                    ),
                    format!(
                        "{official}, a police spokesman, said the investigation was continuing."
                    ),
                    format!(
                        "\"We are grateful to the {n} residents who came forward with information,\" {official} said."
                    ),
                    format!("{who} is due to appear in court in {city} next week."),
                    format!("Damage to the {noun} was estimated at {money},000 dollars."),
                    format!("Neighbours described {who} as quiet and said they were shocked."),
                ],
                highlights: vec![
                    format!("{who}, {age}, was arrested in {city} on {day} after {crime}"),
                    format!("Police say {n} residents came forward with information"),
                    format!("Damage to the {noun} was estimated at {money},000 dollars"),
                    format!("{who} is due in court next week"),
                ],
            }
        }
        1 => {
            let team = format!(
                "{city} {}",
                g.pick(&["United", "Rovers", "City", "Athletic", "Wanderers"])
            );
            let rival = format!(
                "{} {}",
                g.name(),
                g.pick(&["Town", "Albion", "County", "Rangers"])
            );
            let (a, b) = (g.range(1, 5), g.range(0, 3));
            let goals = g.range(5, 30);
            Story {
                lead: format!(
                    "{team} beat {rival} {a}-{b} on {day} to move to the top of the table, with {who} scoring twice."
                ),
                details: vec![
                    format!(
                        "A crowd of {} watched the match in {city}.",
                        news_number(g.range(3000, 60000))
                    ),
                    format!("{who}, {age}, has now scored {goals} goals this season."),
                    format!("\"The players showed real character,\" said manager {official}."),
                    format!("{rival} had won their previous {} matches.", g.range(2, 9)),
                    format!("The two sides meet again in {}.", g.pick(MONTHS)),
                    format!("{team} have not lost at home since {}.", g.pick(MONTHS)),
                ],
                highlights: vec![
                    format!("{team} beat {rival} {a}-{b} to go top of the table"),
                    format!("{who} scored twice and has {goals} goals this season"),
                    format!("Manager {official} praised the players' character"),
                ],
            }
        }
        2 => {
            let pct = g.range(2, 60);
            let up = g.chance(50);
            let dir = if up { "rose" } else { "fell" };
            let sites = g.range(2, 40);
            Story {
                lead: format!(
                    "Shares in {org} {dir} {pct} percent on {day} after the company reported profits of {money} million dollars."
                ),
                details: vec![
                    format!(
                        "The company, based in {city}, employs {} people.",
                        news_number(g.range(200, 90000))
                    ),
                    format!(
                        "Chief executive {who} said demand for its {noun} products remained strong."
                    ),
                    format!(
                        "Analysts had expected profits of about {} million dollars.",
                        money + g.range(1, 50)
                    ),
                    format!("{org} plans to open {sites} new sites in {country} next year."),
                    format!(
                        "\"This has been a {} year for us,\" {who} said.",
                        g.pick(ADJECTIVES)
                    ),
                    format!("The results were published before markets opened in {city}."),
                ],
                highlights: vec![
                    format!("Shares in {org} {dir} {pct} percent after results"),
                    format!("The company reported profits of {money} million dollars"),
                    format!("{org} plans {sites} new sites in {country}"),
                ],
            }
        }
        3 => {
            let storm = format!("{} {}", g.pick(STORM_KINDS), g.name());
            Story {
                lead: format!(
                    "At least {n} homes were damaged when {storm} struck the coast near {city} on {day}, emergency services said."
                ),
                details: vec![
                    format!(
                        "Winds of up to {} miles per hour brought down trees and power lines.",
                        g.range(50, 160)
                    ),
                    format!(
                        "About {} people spent the night in shelters.",
                        news_number(g.range(100, 20000))
                    ),
                    format!(
                        "{official}, who leads the regional emergency team, said roads near the {noun} were closed."
                    ),
                    format!(
                        "\"We have never seen flooding like this,\" said resident {who}, {age}."
                    ),
                    format!("Forecasters expect the storm to weaken as it moves inland."),
                    format!("Repairs are expected to cost {money} million dollars."),
                ],
                highlights: vec![
                    format!("{storm} damaged at least {n} homes near {city}"),
                    format!("Winds brought down trees and power lines"),
                    format!("Repairs are expected to cost {money} million dollars"),
                ],
            }
        }
        _ => {
            let species = format!("{} {}", g.name(), g.word_from_syllables(2, 3));
            Story {
                lead: format!(
                    "Scientists in {city} have discovered a new species of {} in the {noun} near {country}'s border, a study published on {day} says.",
                    g.pick(&["frog", "beetle", "orchid", "lizard", "moth", "fern"])
                ),
                details: vec![
                    format!("The species, named {species}, was found by a team led by {who}."),
                    format!("Only {n} individuals are thought to survive in the wild."),
                    format!("\"It was a complete surprise,\" {who} said."),
                    format!(
                        "The team spent {} months surveying the area.",
                        g.range(2, 30)
                    ),
                    format!("{official} of the {org} said the site should be protected."),
                    format!("The study was funded with {money},000 dollars from local donors."),
                ],
                highlights: vec![
                    format!("A new species, {species}, was found near {city}"),
                    format!("Only {n} individuals are thought to survive"),
                    format!("{official} says the site should be protected"),
                ],
            }
        }
    };
    (city, s)
}

const FILLER: &[&str] = &[
    "The announcement was welcomed by local leaders.",
    "Further details are expected later this week.",
    "Officials declined to comment on the matter.",
    "The news spread quickly on social media.",
    "Residents gathered outside to watch events unfold.",
    "A full report will be published next month.",
    "Similar events have taken place in the region before.",
    "The decision is likely to be reviewed next year.",
];

/// One CNN/DailyMail-like row.
pub fn news_row(g: &mut Gen) -> NewsRow {
    let (city, mut story) = story(g);
    let mut sentences = vec![story.lead.clone()];
    // Details in a shuffled order, mixed with filler, so the key facts are not always
    // in the same positions.
    let mut details = std::mem::take(&mut story.details);
    for i in (1..details.len()).rev() {
        let j = g.range(0, i as u64) as usize;
        details.swap(i, j);
    }
    let mut filler: Vec<&str> = FILLER.to_vec();
    for d in details {
        sentences.push(d);
        if g.chance(40) && !filler.is_empty() {
            let i = g.range(0, filler.len() as u64 - 1) as usize;
            sentences.push(filler.swap_remove(i).to_string());
        }
    }
    let prefix = match g.range(0, 2) {
        0 => format!("{} (CNN) -- ", city.to_uppercase()),
        1 => format!(
            "By . {} . PUBLISHED: . {} {} . | . ",
            person(g),
            g.range(1, 28),
            g.pick(MONTHS)
        ),
        _ => String::new(),
    };
    let article = format!("{prefix}{}", sentences.join(" "));
    // Three or four highlights, the lead first, as in CNN/DailyMail.
    let keep = g.range(3, story.highlights.len() as u64) as usize;
    let highlights = story.highlights[..keep]
        .iter()
        .map(|h| format!("{h} ."))
        .collect::<Vec<_>>()
        .join("\n");
    NewsRow {
        article,
        highlights,
        id: g.hex(40),
    }
}

/// `n` CNN/DailyMail-like rows.
pub fn news_rows(seed: u64, n: usize) -> Vec<NewsRow> {
    let mut g = Gen::new(seed);
    (0..n).map(|_| news_row(&mut g)).collect()
}

/// The WikiText-like splits of `datasets/wikitext-demo/`: split, seed, articles.
pub const WIKITEXT_SPLITS: [(&str, u64, usize); 3] = [
    ("train", 101, 1400),
    ("validation", 102, 60),
    ("test", 103, 60),
];

/// The CNN/DailyMail-like splits of `datasets/cnn_dailymail-demo/`: split, seed, rows.
pub const NEWS_SPLITS: [(&str, u64, usize); 3] = [
    ("train", 201, 3000),
    ("validation", 202, 300),
    ("test", 203, 300),
];

/// One split of the demo corpora, written as `datasets/` holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WrittenSplit {
    /// The parquet file.
    pub path: std::path::PathBuf,
    /// Its rows.
    pub rows: usize,
    /// Bytes of text in its text columns (`text`, or `article` and `highlights`).
    pub text_bytes: usize,
}

/// The seed and size of `split` in one of the tables above.
fn find_split(
    splits: &[(&str, u64, usize)],
    split: &str,
) -> Result<(u64, usize), scalegrad_data::Error> {
    splits
        .iter()
        .find(|(name, _, _)| *name == split)
        .map(|&(_, seed, size)| (seed, size))
        .ok_or_else(|| scalegrad_data::Error::Config(format!("no demo split `{split}`")))
}

/// `out/<folder>/<split>.parquet`, with its folder created.
fn split_path(
    out: &std::path::Path,
    folder: &str,
    split: &str,
) -> Result<std::path::PathBuf, scalegrad_data::Error> {
    let dir = out.join(folder);
    std::fs::create_dir_all(&dir).map_err(|e| scalegrad_data::Error::io(&dir, e))?;
    Ok(dir.join(format!("{split}.parquet")))
}

/// Writes `split` of the WikiText-like corpus to `out/wikitext-demo/<split>.parquet`.
pub fn write_wikitext_split(
    out: &std::path::Path,
    split: &str,
) -> Result<WrittenSplit, scalegrad_data::Error> {
    let (seed, articles) = find_split(&WIKITEXT_SPLITS, split)?;
    let rows = wikitext_rows(seed, articles);
    let path = split_path(out, "wikitext-demo", split)?;
    scalegrad_data::reader::write_string_columns(&path, &[("text", &rows)], 20_000)?;
    Ok(WrittenSplit {
        path,
        rows: rows.len(),
        text_bytes: rows.iter().map(String::len).sum(),
    })
}

/// Writes `split` of the CNN/DailyMail-like corpus to
/// `out/cnn_dailymail-demo/<split>.parquet`.
pub fn write_news_split(
    out: &std::path::Path,
    split: &str,
) -> Result<WrittenSplit, scalegrad_data::Error> {
    let (seed, n) = find_split(&NEWS_SPLITS, split)?;
    let rows = news_rows(seed, n);
    let article: Vec<String> = rows.iter().map(|r| r.article.clone()).collect();
    let highlights: Vec<String> = rows.iter().map(|r| r.highlights.clone()).collect();
    let id: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    let path = split_path(out, "cnn_dailymail-demo", split)?;
    scalegrad_data::reader::write_string_columns(
        &path,
        &[
            ("article", &article),
            ("highlights", &highlights),
            ("id", &id),
        ],
        2_000,
    )?;
    Ok(WrittenSplit {
        path,
        rows: rows.len(),
        text_bytes: article.iter().chain(&highlights).map(String::len).sum(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_text() {
        assert_eq!(wikitext_rows(5, 3), wikitext_rows(5, 3));
        assert_ne!(wikitext_rows(5, 3), wikitext_rows(6, 3));
        assert_eq!(news_rows(5, 4), news_rows(5, 4));
    }

    #[test]
    fn wikitext_rows_have_the_wikitext_shape() {
        let rows = wikitext_rows(1, 5);
        assert_eq!(rows[0], "");
        assert!(
            rows[1].starts_with(" = ") && rows[1].ends_with(" = \n"),
            "{:?}",
            rows[1]
        );
        assert!(
            rows.iter()
                .any(|r| r.starts_with(" = = ") && r.ends_with(" = = \n"))
        );
        for r in rows.iter().filter(|r| !r.is_empty()) {
            assert!(r.starts_with(' ') && r.ends_with(" \n"), "{r:?}");
        }
        assert_eq!(wiki_number(1234567), "1 @,@ 234 @,@ 567");
        assert_eq!(
            wiki_spacing("a well-known ship's bell, (here)."),
            "a well @-@ known ship 's bell , ( here ) ."
        );
    }

    #[test]
    fn the_lead_highlight_is_derived_from_the_article() {
        for row in news_rows(3, 50) {
            let lines: Vec<&str> = row.highlights.lines().collect();
            assert!((3..=4).contains(&lines.len()), "{}", row.highlights);
            assert_eq!(row.id.len(), 40);
            // Most words of each highlight occur in the article.
            for h in lines {
                let words: Vec<&str> = h.split_whitespace().filter(|w| w.len() > 3).collect();
                let found = words.iter().filter(|w| row.article.contains(*w)).count();
                assert!(found * 2 >= words.len(), "{h:?} vs {:?}", row.article);
            }
        }
    }
}
