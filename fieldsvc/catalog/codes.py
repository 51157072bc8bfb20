"""The stable codes everyone counts with, with their French, Arabic and English labels."""

from __future__ import annotations

# code: (fr, ar, en, needs_hospital)
SPECIALTIES: dict[str, tuple[str, str, str, bool]] = {
    "GEN": ("Médecine générale", "الطب العام", "General medicine", False),
    "PED": ("Pédiatrie", "طب الأطفال", "Paediatrics", True),
    "GYN": ("Gynécologie-obstétrique", "أمراض النساء والتوليد", "Gynaecology-obstetrics", True),
    "OPH": ("Ophtalmologie", "طب العيون", "Ophthalmology", True),
    "DEN": ("Médecine dentaire", "طب الأسنان", "Dentistry", True),
    "CAR": ("Cardiologie", "أمراض القلب", "Cardiology", True),
    "DER": ("Dermatologie", "الأمراض الجلدية", "Dermatology", True),
    "ENT": ("Oto-rhino-laryngologie", "أمراض الأنف والأذن والحنجرة", "Ear, nose and throat", True),
    "END": ("Endocrinologie-diabétologie", "الغدد والسكري", "Endocrinology-diabetes", True),
    "PSY": ("Psychiatrie-psychologie", "الطب النفسي وعلم النفس", "Psychiatry-psychology", True),
    "RHU": ("Rhumatologie", "أمراض الروماتيزم", "Rheumatology", True),
    "PNE": ("Pneumologie", "أمراض الرئة", "Pulmonology", True),
    "GAS": ("Gastro-entérologie", "أمراض الجهاز الهضمي", "Gastro-enterology", True),
    "URO": ("Urologie", "جراحة المسالك البولية", "Urology", True),
    "ORT": ("Orthopédie-traumatologie", "جراحة العظام والمفاصل", "Orthopaedics-traumatology", True),
    "SUR": ("Chirurgie générale", "الجراحة العامة", "General surgery", True),
    "PLA": ("Chirurgie plastique et reconstructrice", "الجراحة التجميلية والترميمية",
            "Plastic-reconstructive surgery", True),
}

MEASURES: dict[str, tuple[str, str, str]] = {
    "consultations": ("Consultations", "الفحوصات", "Consultations"),
    "procedures": ("Actes (opérations, extractions…)", "الإجراءات (عمليات، قلع…)",
                   "Procedures (operations, extractions…)"),
    "referrals": ("Orientations vers l'hôpital", "الإحالات إلى المستشفى", "Referrals to hospital"),
    "turned_away": ("Non vus (demande non satisfaite)", "لم يتم فحصهم (طلب غير ملبى)",
                    "Turned away (unmet demand)"),
    "glasses": ("Lunettes remises", "النظارات الموزعة", "Glasses given"),
    "medicines": ("Traitements dispensés", "الأدوية الموزعة", "Medicines dispensed"),
}

SEXES: dict[str, tuple[str, str, str]] = {
    "F": ("Femmes", "إناث", "Female"),
    "M": ("Hommes", "ذكور", "Male"),
}

AGE_BANDS: tuple[str, ...] = ("0-4", "5-14", "15-24", "25-49", "50-64", "65+")

# ICD-10 chapters, I to XXII.
ICD10_CHAPTERS: dict[str, tuple[str, str, str]] = {
    "I": ("Maladies infectieuses et parasitaires", "الأمراض المعدية والطفيلية",
          "Infectious and parasitic diseases"),
    "II": ("Tumeurs", "الأورام", "Neoplasms"),
    "III": ("Maladies du sang", "أمراض الدم", "Diseases of the blood"),
    "IV": ("Maladies endocriniennes et métaboliques", "أمراض الغدد الصماء والتمثيل الغذائي",
           "Endocrine and metabolic diseases"),
    "V": ("Troubles mentaux", "الاضطرابات النفسية", "Mental disorders"),
    "VI": ("Maladies du système nerveux", "أمراض الجهاز العصبي", "Diseases of the nervous system"),
    "VII": ("Maladies de l'œil", "أمراض العين", "Diseases of the eye"),
    "VIII": ("Maladies de l'oreille", "أمراض الأذن", "Diseases of the ear"),
    "IX": ("Maladies de l'appareil circulatoire", "أمراض الجهاز الدوري",
           "Diseases of the circulatory system"),
    "X": ("Maladies de l'appareil respiratoire", "أمراض الجهاز التنفسي",
          "Diseases of the respiratory system"),
    "XI": ("Maladies de l'appareil digestif", "أمراض الجهاز الهضمي",
           "Diseases of the digestive system"),
    "XII": ("Maladies de la peau", "أمراض الجلد", "Diseases of the skin"),
    "XIII": ("Maladies du système ostéo-articulaire", "أمراض الجهاز العضلي الهيكلي",
             "Diseases of the musculoskeletal system"),
    "XIV": ("Maladies de l'appareil génito-urinaire", "أمراض الجهاز البولي التناسلي",
            "Diseases of the genitourinary system"),
    "XV": ("Grossesse et accouchement", "الحمل والولادة", "Pregnancy and childbirth"),
    "XVI": ("Affections périnatales", "حالات الفترة المحيطة بالولادة", "Perinatal conditions"),
    "XVII": ("Malformations congénitales", "التشوهات الخلقية", "Congenital malformations"),
    "XVIII": ("Symptômes et signes anormaux", "الأعراض والعلامات غير الطبيعية",
              "Symptoms and abnormal findings"),
    "XIX": ("Lésions traumatiques", "الإصابات", "Injuries"),
    "XX": ("Causes externes", "الأسباب الخارجية", "External causes"),
    "XXI": ("Facteurs influant sur l'état de santé", "عوامل مؤثرة على الحالة الصحية",
            "Factors influencing health status"),
    "XXII": ("Codes d'utilisation particulière", "رموز لأغراض خاصة", "Codes for special purposes"),
}
