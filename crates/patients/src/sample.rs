//! Realistic sample patients for `pms seed` and the benchmark: common given and family names
//! from English, Spanish, Portuguese, German, French, Italian, Polish, Turkish, Arabic, Hindi,
//! Yoruba, Vietnamese, Chinese, Japanese and Korean speaking populations, with their accents,
//! spread over one of two [`Names`] distributions, and the name queries a front desk types.

use crate::domain::PatientInput;

pub const GIVEN: &[&str] = &[
    "James",
    "Mary",
    "John",
    "Patricia",
    "Robert",
    "Jennifer",
    "Michael",
    "Linda",
    "William",
    "Elizabeth",
    "David",
    "Barbara",
    "Richard",
    "Susan",
    "Joseph",
    "Jessica",
    "Thomas",
    "Sarah",
    "Charles",
    "Karen",
    "José",
    "María",
    "Juan",
    "Lucía",
    "Carlos",
    "Sofía",
    "Javier",
    "Valentina",
    "Andrés",
    "Camila",
    "João",
    "Ana",
    "Pedro",
    "Beatriz",
    "Thiago",
    "Mariana",
    "Lukas",
    "Anna",
    "Jürgen",
    "Lena",
    "Maximilian",
    "Sophie",
    "Felix",
    "Jörg",
    "Hélène",
    "Louis",
    "Chloé",
    "François",
    "Amélie",
    "Théo",
    "Giuseppe",
    "Giulia",
    "Francesco",
    "Chiara",
    "Łukasz",
    "Agnieszka",
    "Piotr",
    "Małgorzata",
    "Krzysztof",
    "Zofia",
    "Mehmet",
    "Ayşe",
    "Mustafa",
    "Fatma",
    "Emre",
    "Zeynep",
    "Mohammed",
    "Fatima",
    "Ahmed",
    "Aisha",
    "Omar",
    "Layla",
    "Aarav",
    "Priya",
    "Rahul",
    "Ananya",
    "Vikram",
    "Sanjana",
    "Oluwaseun",
    "Chiamaka",
    "Emeka",
    "Ngozi",
    "Adebayo",
    "Folake",
    "Nguyễn Văn",
    "Thị Lan",
    "Minh",
    "Hương",
    "Wei",
    "Xiu Ying",
    "Jian",
    "Mei",
    "Hiroshi",
    "Yuki",
    "Haruto",
    "Sakura",
    "Min-jun",
    "Seo-yeon",
    "Ji-ho",
    "Ha-eun",
    "Olga",
    "Dmitri",
    "Søren",
    "Ingrid",
    "Björn",
    "Åsa",
    "Niamh",
    "Seán",
    "Siobhán",
    "Eoin",
];

pub const FAMILY: &[&str] = &[
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Miller",
    "Davis",
    "Wilson",
    "Anderson",
    "Taylor",
    "Thomas",
    "Moore",
    "Jackson",
    "Martin",
    "Thompson",
    "White",
    "Harris",
    "Clark",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Green",
    "Baker",
    "Adams",
    "Nelson",
    "García",
    "Rodríguez",
    "Martínez",
    "Hernández",
    "López",
    "González",
    "Pérez",
    "Sánchez",
    "Ramírez",
    "Torres",
    "Flores",
    "Rivera",
    "Gómez",
    "Díaz",
    "Cruz",
    "Morales",
    "Reyes",
    "Gutiérrez",
    "Ortiz",
    "Jiménez",
    "Silva",
    "Santos",
    "Oliveira",
    "Souza",
    "Pereira",
    "Costa",
    "Carvalho",
    "Almeida",
    "Ribeiro",
    "Gonçalves",
    "Müller",
    "Schmidt",
    "Schneider",
    "Fischer",
    "Weber",
    "Meyer",
    "Wagner",
    "Becker",
    "Schulz",
    "Hoffmann",
    "Schäfer",
    "Koch",
    "Bauer",
    "Richter",
    "Klein",
    "Wolf",
    "Schröder",
    "Neumann",
    "Schwarz",
    "Zimmermann",
    "Martin",
    "Bernard",
    "Dubois",
    "Thomas",
    "Robert",
    "Richard",
    "Petit",
    "Durand",
    "Leroy",
    "Moreau",
    "Lefèvre",
    "Garnier",
    "Rossi",
    "Russo",
    "Ferrari",
    "Esposito",
    "Bianchi",
    "Romano",
    "Colombo",
    "Ricci",
    "Nowak",
    "Kowalski",
    "Wiśniewski",
    "Wójcik",
    "Kowalczyk",
    "Kamiński",
    "Lewandowski",
    "Zieliński",
    "Szymański",
    "Woźniak",
    "Yılmaz",
    "Kaya",
    "Demir",
    "Şahin",
    "Çelik",
    "Yıldız",
    "Yıldırım",
    "Öztürk",
    "Aydın",
    "Özdemir",
    "Al-Sayed",
    "Haddad",
    "Khalil",
    "Mansour",
    "Nasser",
    "Rahman",
    "Hussain",
    "Ibrahim",
    "Abdullah",
    "Karim",
    "Sharma",
    "Verma",
    "Gupta",
    "Singh",
    "Kumar",
    "Patel",
    "Reddy",
    "Iyer",
    "Nair",
    "Chatterjee",
    "Okafor",
    "Adeyemi",
    "Okonkwo",
    "Balogun",
    "Eze",
    "Afolabi",
    "Nwosu",
    "Ogunleye",
    "Obi",
    "Adebayo",
    "Nguyễn",
    "Trần",
    "Lê",
    "Phạm",
    "Hoàng",
    "Huỳnh",
    "Phan",
    "Vũ",
    "Võ",
    "Đặng",
    "Wang",
    "Li",
    "Zhang",
    "Liu",
    "Chen",
    "Yang",
    "Huang",
    "Zhao",
    "Wu",
    "Zhou",
    "Satō",
    "Suzuki",
    "Takahashi",
    "Tanaka",
    "Watanabe",
    "Itō",
    "Yamamoto",
    "Nakamura",
    "Kobayashi",
    "Katō",
    "Kim",
    "Lee",
    "Park",
    "Choi",
    "Jung",
    "Kang",
    "Cho",
    "Yoon",
    "Jang",
    "Lim",
    "Ivanov",
    "Smirnov",
    "Kuznetsov",
    "Popov",
    "Sokolov",
    "Andersen",
    "Nielsen",
    "Hansen",
    "Johansson",
    "Karlsson",
    "Murphy",
    "Kelly",
    "O'Sullivan",
    "Walsh",
    "O'Brien",
    "Byrne",
    "Ryan",
    "O'Connor",
    "O'Neill",
    "McCarthy",
    "Van der Berg",
    "De Jong",
    "Jansen",
    "De Vries",
    "Van Dijk",
    "Bakker",
    "Visser",
    "Smit",
    "Meijer",
    "De Boer",
];

/// How family names are spread over the sample patients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Names {
    /// Evenly over all of [`FAMILY`] (about 250 names).
    Wide,
    /// Over [`COMMON`] only, a fifth of the patients called García or Nguyễn: the realistic
    /// worst case for a name search, a clinic where many patients share a surname.
    Common,
}

impl std::str::FromStr for Names {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "wide" => Ok(Self::Wide),
            "common" => Ok(Self::Common),
            other => Err(format!("{other}: the name distributions are wide and common")),
        }
    }
}

/// The sixteen family names of [`Names::Common`]; the first two take a tenth of the patients
/// each, the other fourteen share the rest evenly.
pub const COMMON: [&str; 16] = [
    "García",
    "Nguyễn",
    "Smith",
    "Müller",
    "Rossi",
    "Kowalski",
    "Yılmaz",
    "Silva",
    "Martin",
    "Kim",
    "Wang",
    "Singh",
    "Tanaka",
    "Okafor",
    "Dubois",
    "Hernández",
];

impl Names {
    /// A family name drawn from this distribution.
    pub fn family(self, rng: &mut fastrand::Rng) -> &'static str {
        match self {
            Self::Wide => FAMILY[rng.usize(..FAMILY.len())],
            Self::Common => match rng.u8(..10) {
                0 => COMMON[0],
                1 => COMMON[1],
                _ => COMMON[rng.usize(2..COMMON.len())],
            },
        }
    }
}

/// A sample patient: a name from `names`, a birth date between 1925 and 2024, a phone number,
/// and for about a third of them an email (random, so unique in practice, also across runs).
pub fn patient(names: Names, rng: &mut fastrand::Rng) -> PatientInput {
    let given = GIVEN[rng.usize(..GIVEN.len())];
    let family = names.family(rng);
    let birth_date = format!("{}-{:02}-{:02}", rng.i32(1925..2025), rng.u8(1..13), rng.u8(1..29));
    let sex = ["female", "male", "other", "unknown"][rng.usize(..4)];
    PatientInput {
        given_name: given.to_owned(),
        family_name: family.to_owned(),
        birth_date,
        sex: sex.to_owned(),
        email: (rng.u8(..3) == 0).then(|| format!("patient.{:016x}@example.org", rng.u64(..))),
        phone: Some(format!("+49{}", rng.u64(1_000_000_000..9_999_999_999))),
        address: None,
    }
}

/// A name query a receptionist might type, a quarter each: a family name from `names`, its
/// first three letters, the name with two adjacent letters swapped (a typo), or a given and a
/// family name together.
pub fn name_query(names: Names, rng: &mut fastrand::Rng) -> String {
    let family = names.family(rng);
    let chars: Vec<char> = family.chars().collect();
    match rng.u8(..4) {
        0 => family.to_owned(),
        1 => chars.iter().take(3).collect(),
        2 if chars.len() >= 4 => {
            let mut typo = chars.clone();
            let at = rng.usize(1..chars.len() - 2);
            typo.swap(at, at + 1);
            typo.into_iter().collect()
        }
        2 => family.to_owned(),
        _ => format!("{} {family}", GIVEN[rng.usize(..GIVEN.len())]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::PatientDraft;

    #[test]
    fn every_sample_patient_passes_the_domain_validation() {
        let mut rng = fastrand::Rng::with_seed(7);
        let today = time::macros::date!(2026 - 11 - 26);
        for names in [Names::Wide, Names::Common] {
            for _ in 0..2_000 {
                let input = patient(names, &mut rng);
                assert!(PatientDraft::parse(input.clone(), today).is_ok(), "{input:?}");
            }
        }
    }

    #[test]
    fn the_common_distribution_gives_a_fifth_garcia_or_nguyen() {
        let mut rng = fastrand::Rng::with_seed(1);
        let draws = 20_000;
        let common =
            (0..draws).filter(|_| matches!(Names::Common.family(&mut rng), "García" | "Nguyễn")).count();
        let share = common as f64 / draws as f64;
        assert!((0.18..0.22).contains(&share), "{share}");
        assert!((0..1_000).all(|_| COMMON.contains(&Names::Common.family(&mut rng))));
    }

    #[test]
    fn name_queries_mix_the_four_kinds() {
        let mut rng = fastrand::Rng::with_seed(3);
        let queries: Vec<String> = (0..400).map(|_| name_query(Names::Wide, &mut rng)).collect();
        assert!(queries.iter().any(|q| q.contains(' ')), "given and family");
        assert!(queries.iter().any(|q| q.chars().count() == 3 && !FAMILY.contains(&q.as_str())), "prefixes");
        assert!(
            queries
                .iter()
                .any(|q| !q.contains(' ') && !FAMILY.contains(&q.as_str()) && q.chars().count() > 3),
            "typos"
        );
        assert!(queries.iter().any(|q| FAMILY.contains(&q.as_str())), "exact family names");
        for query in &queries {
            assert!(crate::names::NameQuery::parse(query).is_ok(), "{query}");
        }
    }
}
