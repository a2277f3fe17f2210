"""A small rule-based finding extractor for chest X-ray report text, and finding-level scores.

A helper of ``model.py``, kept apart because it is a metric with a vocabulary of its own (some 30
findings as regular expressions and a negation rule), used both to score the generated reports and
to build ORPO's rejected reports; nothing in it is specific to this paper's model, and it is a
candidate for ``reproductions/metrics/`` once a second paper needs a finding-level score.

Each finding is a canonical name with a regular expression over the lower-cased text (MeSH-like
terms and their usual wordings in the IU X-ray reports). A mention is negated when a negation cue
("no", "without", "clear of", ...) comes before it in the same sentence with no contrast word
("but", "however", ...) in between, NegEx-style; negated mentions are not findings. The same
extractor runs on the generated and the reference text, so the F1 compares like with like; it is a
finding-level F1, not RadGraph's entity-and-relation F1.
"""

from __future__ import annotations

import re

# canonical finding -> pattern (word boundaries added around it)
FINDINGS: dict[str, str] = {
    "cardiomegaly": r"cardiomegaly|cardiac enlargement|enlargement of the (?:heart|cardiac silhouette)"
                    r"|enlarged (?:heart|cardiac silhouette|cardiomediastinal silhouette)"
                    r"|(?:heart|cardiac silhouette|heart size) (?:is |appears )?(?:mildly |moderately |markedly |"
                    r"slightly )?(?:enlarged|increased)",
    "pleural effusion": r"effusions?",
    "pneumothorax": r"pneumothora(?:x|ces)",
    "consolidation": r"consolidat\w*",
    "opacity": r"opacit(?:y|ies)|infiltrates?|air ?space disease",
    "atelectasis": r"atelecta\w*",
    "pulmonary edema": r"o?edema",
    "pulmonary congestion": r"congest\w*",
    "pneumonia": r"pneumonia",
    "granuloma": r"granulom\w*",
    "calcification": r"calcifi\w*|calcinosis",
    "nodule": r"nodul\w*",
    "mass": r"mass(?:es)?",
    "emphysema": r"emphysema\w*|hyperinfla\w*|hyperexpan\w*|copd|chronic obstructive",
    "hypoinflation": r"hypoinfla\w*|low lung volumes?",
    "scarring": r"scar(?:s|ring|red)?|cicatri\w*|fibros\w*|fibrotic",
    "degenerative spine": r"degenerative|spondylo\w*|osteophyt\w*",
    "scoliosis": r"scolio\w*",
    "kyphosis": r"kypho\w*",
    "fracture": r"fractur\w*",
    "hernia": r"hernia\w*",
    "medical device": r"sternotomy|surgical clips?|clips|catheters?|pacemaker|pacer|stents?|wires?|tubes?|"
                      r"devices?|hardware|prosthe\w*|cabg",
    "tortuous aorta": r"tortu\w*|ectatic|ectasia|unfold\w*",
    "atherosclerosis": r"atherosclero\w*",
    "pleural thickening": r"thickening",
    "interstitial disease": r"interstiti\w*|reticular",
    "elevated hemidiaphragm": r"eventration|elevat\w* (?:of )?(?:the )?(?:right |left )?hemidiaphragm"
                              r"|hemidiaphragm (?:is )?(?:mildly |slightly )?elevat\w*",
    "blunted costophrenic angle": r"blunt\w*",
    "lymphadenopathy": r"(?:lymph)?adenopath\w*",
    "deformity": r"deformit\w*",
}
_PATTERNS = {name: re.compile(rf"\b(?:{pattern})\b") for name, pattern in FINDINGS.items()}
_NEGATION = re.compile(r"\b(?:no|not|without|negative for|free of|clear of|resolution of|resolved|absence of|"
                       r"absent|rather than|removal of|removed)\b")
_CONTRAST = re.compile(r"\b(?:but|however|although|though|otherwise|which|except)\b")
_SENTENCE = re.compile(r"(?<=[.;!?])\s+|\n+")


def sentences(text: str) -> list[str]:
    """The sentences of ``text`` (split after . ; ! ?), stripped, empty ones left out."""
    return [s.strip() for s in _SENTENCE.split(text) if s.strip()]


def _negated(sentence: str, start: int) -> bool:
    before = sentence[:start]
    cues = list(_NEGATION.finditer(before))
    if not cues:
        return False
    return not _CONTRAST.search(before, cues[-1].end())


def mentions(text: str) -> tuple[set[str], set[str]]:
    """(positive findings, negated findings) mentioned in ``text``; a finding both affirmed and denied
    somewhere counts as positive."""
    positive, negated = set(), set()
    for sentence in sentences(text.lower()):
        for name, pattern in _PATTERNS.items():
            for match in pattern.finditer(sentence):
                (negated if _negated(sentence, match.start()) else positive).add(name)
    return positive, negated - positive


def extract(text: str) -> set[str]:
    """The findings ``text`` affirms (negated mentions left out)."""
    return mentions(text)[0]


def finding_scores(references: list[str], candidates: list[str]) -> dict[str, float]:
    """Micro-averaged finding precision, recall and F1 over (report, finding) pairs, their raw counts
    (correct affirmed findings, false ones: in the candidate, not in its reference, and missed ones), and
    per report the mean number of hallucinated (false) findings and of omitted (missed) ones."""
    if len(references) != len(candidates) or not references:
        raise ValueError(f"need as many candidates as references (got {len(candidates)} and {len(references)})")
    tp = fp = fn = 0
    for ref, cand in zip(references, candidates):
        r, c = extract(ref), extract(cand)
        tp, fp, fn = tp + len(r & c), fp + len(c - r), fn + len(r - c)
    n = len(references)
    return {"finding_precision": tp / (tp + fp) if tp + fp else 0.0,
            "finding_recall": tp / (tp + fn) if tp + fn else 0.0,
            "finding_f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0,
            "hallucinated_per_report": fp / n, "omitted_per_report": fn / n,
            "correct_findings": tp, "false_findings": fp, "missed_findings": fn}
