"""The terminal side of ``panorama index``: progress bars and the closing report.

Consent decisions follow the run: a customer merged into another, or records split off into a
new customer, take their decisions along (gateway.consent_carry).
"""

from __future__ import annotations

import sys

from tqdm import tqdm

from gateway.config import Config
from gateway.consent import ConsentError, open_consent_store
from gateway.consent_carry import carry_consent, placed_with_decisions
from gateway.crosswalk import CrosswalkError, KeyHasher, open_crosswalk
from gateway.indexer import Indexer, IndexFailed
from gateway.matching import Matcher
from gateway.sources import SourceSet

#: Who carries consent decisions along an index run, in the consent store.
ACTOR = "panorama-index"


async def run_index(config: Config, *, full: bool) -> int:
    """Index every source of ``config``; print progress and a report; return the exit code."""
    assert config.identity is not None
    sources = SourceSet.from_config(config)
    crosswalk = open_crosswalk(config.identity.store, base_dir=config.identity.base_dir)
    bars: dict[str, tqdm] = {}

    def progress(step: str, count: int) -> None:
        if step not in bars:
            bars[step] = tqdm(desc=step, unit=" records", file=sys.stderr, dynamic_ncols=True)
        bars[step].update(count)

    consent = open_consent_store(config.consent.store, config.consent.base_dir)
    try:
        async with crosswalk, consent:
            before = await placed_with_decisions(crosswalk, consent)
            indexer = Indexer(sources, crosswalk, Matcher(config.identity.rules),
                              KeyHasher(config.identity.secret), progress=progress)
            report = await indexer.run(full=full)
            carried = await carry_consent(consent, crosswalk, before, ACTOR)
    except (IndexFailed, CrosswalkError, ConsentError) as exc:
        print(f"panorama index: {exc}", file=sys.stderr)
        return 1
    finally:
        for bar in bars.values():
            bar.close()
        await sources.aclose()
    for line in report.lines():
        print(line)
    if carried:
        print(f"consent decisions carried to the customers' new ids: {carried}")
    return 0
