//! Synthetic sanctions lists in OFAC's exact CSV formats (the real lists cannot be downloaded here), the spelling
//! variants of listed names a screener must catch, and unlisted names it must let through. Deterministic for a
//! seed. Listed people take their surnames from one half of the surname pool and unlisted people from the other
//! half; first names are shared, so an unlisted "Mohammed" meets many listed ones.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

const GIVEN: &[&str] = &[
    "Mohammed",
    "Ahmed",
    "Yusuf",
    "Hussein",
    "Abdul",
    "Osama",
    "Omar",
    "Khalid",
    "Ibrahim",
    "Hassan",
    "Ali",
    "Mustafa",
    "Qasim",
    "Jamal",
    "Tariq",
    "Faisal",
    "Karim",
    "Rashid",
    "Salim",
    "Walid",
    "Joaquin",
    "Jose",
    "Juan",
    "Luis",
    "Carlos",
    "Miguel",
    "Rafael",
    "Ismael",
    "Ovidio",
    "Jesus",
    "Rosa",
    "Maria",
    "Guadalupe",
    "Fernando",
    "Alejandro",
    "Sergei",
    "Aleksandr",
    "Mikhail",
    "Yuri",
    "Dmitri",
    "Vladimir",
    "Igor",
    "Oleg",
    "Viktor",
    "Nikolai",
    "Wei",
    "Jian",
    "Li",
    "Chen",
    "Kim",
    "Jong",
    "Hyun",
    "Ali Reza",
    "Mehdi",
    "Hamid",
];
/// Another spelling of some given names, as transliterations and lists write them.
const SPELLINGS: &[(&str, &str)] = &[
    ("Mohammed", "Muhammad"),
    ("Ahmed", "Ahmad"),
    ("Yusuf", "Yousef"),
    ("Hussein", "Husain"),
    ("Abdul", "Abdel"),
    ("Osama", "Usama"),
    ("Omar", "Umar"),
    ("Khalid", "Khaled"),
    ("Qasim", "Kassem"),
    ("Jamal", "Gamal"),
    ("Sergei", "Sergey"),
    ("Aleksandr", "Alexander"),
    ("Mikhail", "Mikhael"),
    ("Yuri", "Iouri"),
    ("Dmitri", "Dmitry"),
    ("Joaquin", "Joaquín"),
    ("Jose", "José"),
    ("Jesus", "Jesús"),
    ("Rashid", "Rachid"),
    ("Salim", "Selim"),
];
const SURNAMES: &[&str] = &[
    "GUZMAN",
    "LOERA",
    "ZAMBADA",
    "GARCIA",
    "CARO",
    "QUINTERO",
    "FELIX",
    "GALLARDO",
    "ARELLANO",
    "CARRILLO",
    "FUENTES",
    "OSORIO",
    "CARDENAS",
    "TREVINO",
    "MORALES",
    "LAZCANO",
    "MENDEZ",
    "VALENCIA",
    "ESPINOZA",
    "BELTRAN",
    "LEYVA",
    "ORTIZ",
    "RAMIREZ",
    "SALAZAR",
    "OVALLE",
    "MONTOYA",
    "HERRERA",
    "VILLARREAL",
    "NAVARRO",
    "CASTILLO",
    "AL-BAGHDADI",
    "AL-BADRI",
    "AL-ZAWAHIRI",
    "QADHAFI",
    "BIN LADIN",
    "HAQQANI",
    "MANSOUR",
    "HAMADI",
    "NASRALLAH",
    "SULEIMANI",
    "AL-MASRI",
    "AL-ADNANI",
    "AL-HASHIMI",
    "SHEKAU",
    "KHALIFA",
    "HAFTAR",
    "AL-ASSAD",
    "MAKHLOUF",
    "RAHMAN",
    "SAEED",
    "AZHAR",
    "DAWOOD",
    "KASKAR",
    "MEMON",
    "IBRAHIM",
    "QURESHI",
    "KHAN",
    "BAKR",
    "JABER",
    "NASSER",
    "TLASS",
    "SHALISH",
    "YASIN",
    "HAMDAN",
    "KARIMOV",
    "IVANOV",
    "PETROV",
    "SOKOLOV",
    "VOLKOV",
    "ROTENBERG",
    "DERIPASKA",
    "VEKSELBERG",
    "SECHIN",
    "PRIGOZHIN",
    "KOVALCHUK",
    "TIMCHENKO",
    "SHAMALOV",
    "USMANOV",
    "ABRAMOVICH",
    "MORDASHOV",
    "KIRIYENKO",
    "PATRUSHEV",
    "BORTNIKOV",
    "MEDVEDEV",
    "LAVROV",
    "SHOIGU",
    "GERASIMOV",
    "NARYSHKIN",
    "ZOLOTOV",
    "KIM",
    "CHOE",
    "PAK",
    "RI",
    "JANG",
    "HAN",
    "CHEN",
    "WANG",
    "ZHANG",
    "LIU",
    "YANG",
    "ZHAO",
    "HUANG",
    "ZHOU",
    "WU",
    "XU",
    "SUN",
    "MA",
    "ZHU",
    "HU",
    "GUO",
    "HE",
    "LIN",
    "LUO",
    "GAO",
    "ZHENG",
    "LIANG",
    "XIE",
    "TANG",
    "SOLEIMANI",
    "JAFARI",
    "HOSSEINI",
    "MOUSAVI",
    "REZAEI",
    "AHMADI",
    "MOHAMMADI",
    "KARIMI",
    "SADEGHI",
    "NAJAFI",
    "MADURO",
    "CABELLO",
    "EL AISSAMI",
    "PADRINO",
    "REVEROL",
    "SAAB",
    "PULIDO",
    "ORTEGA",
    "MURILLO",
    "CASTRO",
    "BATISTA",
    "MEJIA",
    "PEREZ",
    "LOPEZ",
    "HERNANDEZ",
    "GONZALEZ",
    "RODRIGUEZ",
    "MARTINEZ",
    "SANCHEZ",
    "FLORES",
    "RIVERA",
    "GOMEZ",
    "DIAZ",
    "REYES",
    "CRUZ",
    "TORRES",
    "GUTIERREZ",
    "RUIZ",
    "ALVAREZ",
    "JIMENEZ",
    "MORENO",
    "ROMERO",
    "ROJAS",
    "VARGAS",
    "MEDINA",
    "AGUILAR",
    "VEGA",
    "CAMPOS",
    "GUERRERO",
    "MENDOZA",
    "SILVA",
    "SOTO",
];
const ENTITY_WORDS: &[&str] = &[
    "GLOBAL",
    "TRADING",
    "SHIPPING",
    "PETROLEUM",
    "EXPORT",
    "IMPORT",
    "HOLDINGS",
    "INVESTMENT",
    "MARITIME",
    "BANK",
    "GROUP",
    "INDUSTRIES",
    "LOGISTICS",
    "ENERGY",
    "METALS",
    "CHEMICALS",
    "AVIATION",
    "CONSTRUCTION",
    "SECURITY",
    "EXCHANGE",
    "FINANCE",
    "DEVELOPMENT",
    "TECHNOLOGY",
    "AGRICULTURAL",
    "MINING",
    "STAR",
    "GOLDEN",
    "EASTERN",
    "NORTHERN",
    "PACIFIC",
    "ATLANTIC",
    "ORIENT",
    "UNITED",
    "NATIONAL",
    "FIRST",
    "NEW",
    "ROYAL",
    "CRESCENT",
];
const SUFFIXES: &[&str] = &["LTD", "LLC", "S.A. DE C.V.", "CO.", "FZE", "JSC", "GMBH", "S.A."];
const COUNTRIES: &[&str] = &[
    "Mexico",
    "Colombia",
    "Venezuela",
    "Iran",
    "Iraq",
    "Syria",
    "Russia",
    "Korea, North",
    "China",
    "Lebanon",
    "Pakistan",
    "Afghanistan",
    "Yemen",
    "Libya",
    "Cuba",
    "Nicaragua",
    "United Arab Emirates",
    "Turkey",
    "Guatemala",
];

/// One listed individual as generated: its `ent_num` and name parts.
#[derive(Debug, Clone)]
pub struct ListedPerson {
    pub ent_num: u64,
    pub given: String,
    pub middle: Option<String>,
    pub surnames: Vec<String>,
    pub aliases: Vec<String>,
}

/// A generated list: the three OFAC files and the individuals in it.
#[derive(Debug, Clone)]
pub struct SyntheticList {
    pub sdn_csv: String,
    pub alt_csv: String,
    pub add_csv: String,
    pub people: Vec<ListedPerson>,
}

fn listed_surnames() -> Vec<&'static str> {
    SURNAMES.iter().step_by(2).copied().collect()
}

/// The other half of the pool, less any surname a listed surname or a given name is a spelling of
/// (SULEIMANI / SOLEIMANI, AHMADI / Ahmed): a screener must flag those, so they are not "unlisted".
fn unlisted_surnames() -> Vec<&'static str> {
    use remesa::domain::sanctions::words;
    let listed: Vec<String> = listed_surnames()
        .iter()
        .chain(GIVEN.iter())
        .flat_map(|s| words(s))
        .map(|w| w.skeleton)
        .collect();
    SURNAMES
        .iter()
        .skip(1)
        .step_by(2)
        .copied()
        .filter(|s| words(s).iter().all(|w| !listed.contains(&w.skeleton)))
        .collect()
}

fn pick<'a>(rng: &mut StdRng, from: &[&'a str]) -> &'a str {
    from.choose(rng).copied().unwrap_or("X")
}

fn title_case(s: &str) -> String {
    s.split(' ')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_uppercase().collect::<String>() + &c.as_str().to_lowercase())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `entries` listed entries (80 % individuals), in OFAC's CSV formats.
pub fn synthetic_ofac(seed: u64, entries: usize) -> SyntheticList {
    let mut rng = StdRng::seed_from_u64(seed);
    let surnames = listed_surnames();
    let (mut sdn, mut alt, mut add) = (String::new(), String::new(), String::new());
    let mut people = Vec::new();
    let (mut alt_num, mut add_num) = (1u64, 1u64);
    for i in 0..entries {
        let ent_num = 10_000 + i as u64;
        let country = pick(&mut rng, COUNTRIES);
        if rng.gen_bool(0.8) {
            let given = pick(&mut rng, GIVEN).to_owned();
            let middle = rng.gen_bool(0.5).then(|| pick(&mut rng, GIVEN).to_owned());
            let mut last = vec![pick(&mut rng, &surnames).to_owned()];
            if rng.gen_bool(0.5) {
                last.push(pick(&mut rng, &surnames).to_owned());
            }
            let first = match &middle {
                Some(m) => format!("{given} {m}"),
                None => given.clone(),
            };
            let name = format!("{}, {first}", last.join(" "));
            let year = rng.gen_range(1945..2000);
            sdn.push_str(&format!(
                "{ent_num},\"{name}\",\"individual\",\"SDNTK\",-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,\"DOB {:02} Jan {year}; POB {country}.\"\n",
                rng.gen_range(1..28)
            ));
            let mut aliases = Vec::new();
            for _ in 0..rng.gen_range(0..3) {
                let alias = match rng.gen_range(0..3) {
                    0 => format!("{} {}", given.to_uppercase(), last[0]),
                    1 => format!("EL {}", pick(&mut rng, &surnames)),
                    _ => format!("{}, {}", last[0], pick(&mut rng, GIVEN)),
                };
                alt.push_str(&format!("{ent_num},{alt_num},\"aka\",\"{alias}\",-0- \n"));
                alt_num += 1;
                aliases.push(alias);
            }
            people.push(ListedPerson {
                ent_num,
                given,
                middle,
                surnames: last,
                aliases,
            });
        } else {
            let words: Vec<&str> = (0..rng.gen_range(2..4))
                .map(|_| pick(&mut rng, ENTITY_WORDS))
                .collect();
            let name = format!("{} {}", words.join(" "), pick(&mut rng, SUFFIXES));
            sdn.push_str(&format!(
                "{ent_num},\"{name}\",-0- ,\"SDGT\",-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- \n"
            ));
        }
        add.push_str(&format!("{ent_num},{add_num},-0- ,-0- ,\"{country}\",-0- \n"));
        add_num += 1;
    }
    sdn.push('\u{1a}');
    SyntheticList {
        sdn_csv: sdn,
        alt_csv: alt,
        add_csv: add,
        people,
    }
}

/// How a variant differs from the listed name.
pub const VARIATIONS: &[&str] = &[
    "natural order",
    "no middle name",
    "one surname",
    "accents and lower case",
    "transliteration",
    "alias",
    "typo",
    "surname first, upper case",
];

fn accent(s: &str, rng: &mut StdRng) -> String {
    s.chars()
        .map(|c| match c {
            'a' if rng.gen_bool(0.5) => 'á',
            'e' if rng.gen_bool(0.5) => 'é',
            'i' if rng.gen_bool(0.5) => 'í',
            'o' if rng.gen_bool(0.5) => 'ó',
            'u' if rng.gen_bool(0.5) => 'ú',
            'n' if rng.gen_bool(0.2) => 'ñ',
            c => c,
        })
        .collect()
}

fn respell(given: &str) -> String {
    SPELLINGS
        .iter()
        .find_map(|(a, b)| (*a == given).then_some(*b).or((*b == given).then_some(*a)))
        .unwrap_or(given)
        .to_owned()
}

fn typo(s: &str, rng: &mut StdRng) -> String {
    let mut c: Vec<char> = s.chars().collect();
    if c.len() > 4 {
        let i = rng.gen_range(1..c.len() - 2);
        c.swap(i, i + 1);
    }
    c.into_iter().collect()
}

/// `n` spelling variants of listed people's names: (the variant, the expected `ent_num`, the variation).
pub fn variants(list: &SyntheticList, seed: u64, n: usize) -> Vec<(String, u64, &'static str)> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = Vec::new();
    for k in 0..n {
        let Some(p) = list.people.choose(&mut rng) else {
            break;
        };
        let kind = VARIATIONS[k % VARIATIONS.len()];
        let surnames = title_case(&p.surnames.join(" "));
        let middle = p.middle.as_deref().map(|m| format!(" {m}")).unwrap_or_default();
        let v = match kind {
            "natural order" => format!("{}{middle} {surnames}", p.given),
            "no middle name" => format!("{} {surnames}", p.given),
            "one surname" => format!("{}{middle} {}", p.given, title_case(&p.surnames[0])),
            "accents and lower case" => accent(&format!("{} {surnames}", p.given), &mut rng).to_lowercase(),
            "transliteration" => format!("{}{middle} {surnames}", respell(&p.given)),
            "alias" => match p.aliases.choose(&mut rng) {
                Some(a) => a.clone(),
                None => format!("{} {surnames}", p.given),
            },
            "typo" => format!("{} {}", p.given, typo(&surnames, &mut rng)),
            _ => format!("{} {}", p.surnames.join(" "), p.given.to_uppercase()),
        };
        out.push((v, p.ent_num, kind));
    }
    out
}

/// `n` names of people who are not listed: their surnames are never listed ones, and no listed name has all its
/// words among theirs (such a person is a true namesake, whom a screener must flag).
pub fn unlisted_names(list: &SyntheticList, seed: u64, n: usize) -> Vec<String> {
    use remesa::domain::sanctions::words;
    let listed: Vec<Vec<String>> = list
        .people
        .iter()
        .flat_map(|p| {
            let mut names = vec![format!(
                "{} {} {}",
                p.surnames.join(" "),
                p.given,
                p.middle.clone().unwrap_or_default()
            )];
            names.extend(p.aliases.iter().cloned());
            names
        })
        .map(|n| words(&n).into_iter().map(|w| w.plain).collect())
        .collect();
    let namesake = |name: &str| {
        let mine: Vec<String> = words(name).into_iter().map(|w| w.plain).collect();
        listed.iter().any(|l| l.iter().all(|w| mine.contains(w)))
    };
    let mut rng = StdRng::seed_from_u64(seed);
    let surnames = unlisted_surnames();
    std::iter::repeat_with(|| {
        let mut name = pick(&mut rng, GIVEN).to_owned();
        if rng.gen_bool(0.4) {
            name.push(' ');
            name.push_str(pick(&mut rng, GIVEN));
        }
        name.push(' ');
        name.push_str(&title_case(pick(&mut rng, &surnames)));
        if rng.gen_bool(0.5) {
            name.push(' ');
            name.push_str(&title_case(pick(&mut rng, &surnames)));
        }
        name
    })
    .filter(|name| !namesake(name))
    .take(n)
    .collect()
}
