#!/usr/bin/env python3
"""Word error rate of the gateway's Transcribe RPC over the LibriVox clips of Debian's
pocketsphinx-testdata, beside the WER of the reference decoder's own expected output shipped in
the same folder (test-lm.match, made by PocketSphinx's test suite with a small test LM).

Usage: tools/bench/wer.py [--server 127.0.0.1:50051] [--prism PATH] [--model local/pocketsphinx]
Needs a running prism-server with a transcribe-capable plugin (PRISM_PLUGIN_PATH).
"""
import argparse
import os
import re
import subprocess
import sys
import time

DATA = "/usr/share/pocketsphinx/test/data/librivox"


def words(text):
    """Lower-case words, without the sentence markers and utterance ids of the Sphinx files."""
    text = re.sub(r"\([^)]*\)\s*$", "", text.strip())
    return [w for w in text.lower().split() if w not in ("<s>", "</s>", "<sil>")]


def edit_distance(hyp, ref):
    row = list(range(len(ref) + 1))
    for i, h in enumerate(hyp, 1):
        previous, row[0] = row[0], i
        for j, r in enumerate(ref, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (h != r))
    return row[len(ref)]


def read_by_id(path):
    """{utterance id: words} of a Sphinx transcription or match file."""
    result = {}
    for line in open(path, encoding="utf-8"):
        m = re.search(r"\(([^ )]+)[^)]*\)\s*$", line)
        if m:
            result[m.group(1)] = words(line)
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", default=os.environ.get("PRISM_ADDRESS", "127.0.0.1:50051"))
    parser.add_argument("--prism", default=os.path.join(os.path.dirname(__file__), "../../.build/debug/prism"))
    parser.add_argument("--model", default="")
    args = parser.parse_args()

    refs = read_by_id(os.path.join(DATA, "transcription"))
    reference_decoder = read_by_id(os.path.join(DATA, "test-lm.match"))
    ids = [line.strip() for line in open(os.path.join(DATA, "fileids")) if line.strip()]
    errors = ref_errors = total = 0
    audio_seconds = wall = 0.0
    print(f"{'clip':<46} {'WER':>6} {'ref.dec':>7}  hypothesis")
    for uid in ids:
        command = [args.prism, "transcribe", "--quiet", "--server", args.server, os.path.join(DATA, uid + ".wav")]
        if args.model:
            command += ["--model", args.model]
        started = time.time()
        run = subprocess.run(command, capture_output=True, text=True)
        wall += time.time() - started
        if run.returncode != 0:
            sys.exit(f"{uid}: prism transcribe failed: {run.stderr.strip()}")
        hyp, ref = words(run.stdout), refs[uid]
        e, r = edit_distance(hyp, ref), edit_distance(reference_decoder.get(uid, []), ref)
        errors, ref_errors, total = errors + e, ref_errors + r, total + len(ref)
        size = os.path.getsize(os.path.join(DATA, uid + ".wav"))
        audio_seconds += (size - 44) / 32000  # the clips are 16 kHz mono s16
        print(f"{uid:<46} {e / len(ref):6.1%} {r / len(ref):7.1%}  {' '.join(hyp)}")
    print(f"\nWER over {len(ids)} clips ({total} reference words): gateway {errors / total:.1%} "
          f"({errors} errors); reference decoder's test-lm.match {ref_errors / total:.1%} ({ref_errors} errors)")
    print(f"{audio_seconds:.1f} s of audio in {wall:.1f} s wall ({audio_seconds / wall:.1f}x real time, CLI start-up included)")


if __name__ == "__main__":
    main()
