"""Public metadata for UCI Adult (the worked example and the benchmark).

Categories are the value lists of the data dictionary `adult.names` (public, published with the
data set); bounds are domain knowledge (working ages 17-90, the 1-16 education code, capital gains
top-coded at 99999, a week of at most 99 hours, census weights up to 1.5 million). Nothing here is
read from the rows.
"""

from __future__ import annotations

from typing import Any

ADULT_COLUMNS: dict[str, dict[str, Any]] = {
    "age": {"bounds": [17, 90]},
    "workclass": {
        "categories": [
            "Private",
            "Self-emp-not-inc",
            "Self-emp-inc",
            "Federal-gov",
            "Local-gov",
            "State-gov",
            "Without-pay",
            "Never-worked",
        ]
    },
    "fnlwgt": {"bounds": [10000, 1500000]},
    "education": {
        "categories": [
            "Bachelors",
            "Some-college",
            "11th",
            "HS-grad",
            "Prof-school",
            "Assoc-acdm",
            "Assoc-voc",
            "9th",
            "7th-8th",
            "12th",
            "Masters",
            "1st-4th",
            "10th",
            "Doctorate",
            "5th-6th",
            "Preschool",
        ]
    },
    "education-num": {"bounds": [1, 16]},
    "marital-status": {
        "categories": [
            "Married-civ-spouse",
            "Divorced",
            "Never-married",
            "Separated",
            "Widowed",
            "Married-spouse-absent",
            "Married-AF-spouse",
        ]
    },
    "occupation": {
        "categories": [
            "Tech-support",
            "Craft-repair",
            "Other-service",
            "Sales",
            "Exec-managerial",
            "Prof-specialty",
            "Handlers-cleaners",
            "Machine-op-inspct",
            "Adm-clerical",
            "Farming-fishing",
            "Transport-moving",
            "Priv-house-serv",
            "Protective-serv",
            "Armed-Forces",
        ]
    },
    "relationship": {
        "categories": [
            "Wife",
            "Own-child",
            "Husband",
            "Not-in-family",
            "Other-relative",
            "Unmarried",
        ]
    },
    "race": {"categories": ["White", "Asian-Pac-Islander", "Amer-Indian-Eskimo", "Other", "Black"]},
    "sex": {"categories": ["Female", "Male"]},
    "capital-gain": {"bounds": [0, 99999]},
    "capital-loss": {"bounds": [0, 4356]},
    "hours-per-week": {"bounds": [1, 99]},
    "native-country": {
        "categories": [
            "United-States",
            "Cambodia",
            "England",
            "Puerto-Rico",
            "Canada",
            "Germany",
            "Outlying-US(Guam-USVI-etc)",
            "India",
            "Japan",
            "Greece",
            "South",
            "China",
            "Cuba",
            "Iran",
            "Honduras",
            "Philippines",
            "Italy",
            "Poland",
            "Jamaica",
            "Vietnam",
            "Mexico",
            "Portugal",
            "Ireland",
            "France",
            "Dominican-Republic",
            "Laos",
            "Ecuador",
            "Taiwan",
            "Haiti",
            "Columbia",
            "Hungary",
            "Guatemala",
            "Nicaragua",
            "Scotland",
            "Thailand",
            "Yugoslavia",
            "El-Salvador",
            "Trinadad&Tobago",
            "Peru",
            "Hong",
            "Holand-Netherlands",
        ]
    },
    "income": {"categories": ["<=50K", ">50K"]},
}
