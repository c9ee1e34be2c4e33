#!/usr/bin/env python3
"""Media core benchmark, run by hand (not by tests): times `prism media` against the baselines of
issue 3 in one run on the same inputs and prints ratios and peak memory.

  (a) the seed document's image step (Pillow: open, resize LANCZOS to <=1568x1568, save PNG
      optimize=True) vs `prism media fit PHOTO --provider anthropic`, on the 5120x2880 photos of
      Debian's plasma-workspace-wallpapers;
  (b) `prism media fit PHOTO --max-pixels 2458624 --format jpeg` vs `vipsthumbnail` doing the same,
      plus libvips without shrink-on-load (`vips resize`, full decode) to show what shrink-on-load wins;
  (c) a 10-minute MP3 to 16 kHz mono WAV: `prism media audio` vs the `ffmpeg` command line.

Usage: tools/bench/media_bench.py [--prism PATH] [--runs N] [--photos DIR]
Needs: ffmpeg, vipsthumbnail, vips, /usr/bin/time, python3 with Pillow (pip install pillow).
Photos: apt-get download plasma-workspace-wallpapers into /tmp and `dpkg -x` it (never commit them);
the script does that itself when --photos is not given.
"""
import argparse, glob, json, os, re, shutil, statistics, subprocess, sys, tempfile

ANTHROPIC_LONG_EDGE, ANTHROPIC_PIXELS, ANTHROPIC_BYTES = 1568, 1_150_000, 5 * 1024 * 1024

SEED_STEP = r"""
import sys
from PIL import Image
img = Image.open(sys.argv[1])
w, h = img.size
s = min(1.0, 1568 / max(w, h))
img = img.resize((int(w * s), int(h * s)), Image.LANCZOS)
img.save(sys.argv[2], "PNG", optimize=True)
"""


def timed(cmd):
    """Runs cmd under /usr/bin/time; returns (wall seconds, CPU seconds user+sys, peak RSS in MB,
    and for `--json` prism runs the in-process milliseconds of the operation from its report)."""
    out = subprocess.run(["/usr/bin/time", "-f", "@@%e %U %S %M"] + cmd, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    if out.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{out.stderr}")
    wall, user, system, kb = re.findall(r"@@([\d.]+) ([\d.]+) ([\d.]+) (\d+)", out.stderr)[-1]
    inside = json.loads(out.stdout).get("milliseconds") if "--json" in cmd else None
    return float(wall), float(user) + float(system), int(kb) / 1024, inside


class Result:
    """Medians of wall and CPU time, and the largest peak RSS, over the runs of one command."""
    def __init__(self, samples):
        self.wall = statistics.median(w for w, _, _, _ in samples)
        self.cpu = statistics.median(c for _, c, _, _ in samples)
        self.mb = max(m for _, _, m, _ in samples)
        inside = [i for _, _, _, i in samples if i is not None]
        self.inside = statistics.median(inside) / 1000 if inside else None

    def __str__(self):
        return f"{self.wall:6.2f} {self.cpu:6.2f} {self.mb:5.0f}"


def median_of(cmds_by_name, runs):
    """Runs each command `runs` times, interleaved so machine load hits all alike."""
    samples = {name: [] for name in cmds_by_name}
    for _ in range(runs):
        for name, cmd in cmds_by_name.items():
            samples[name].append(timed(cmd))
    return {name: Result(v) for name, v in samples.items()}


def image_size(path):
    get = lambda f: int(subprocess.run(["vipsheader", "-f", f, path], capture_output=True, text=True).stdout)
    return get("width"), get("height")


def label(photo):
    """"Flow/images_dark" for .../wallpapers/Flow/contents/images_dark/5120x2880.jpg."""
    parts = photo.split("/")
    return f"{parts[-4]}/{parts[-2]}"


def photos_from_debian(workdir):
    target = os.path.join(workdir, "wallpapers")
    if not glob.glob(os.path.join(target, "**/5120x2880.*"), recursive=True):
        os.makedirs(target, exist_ok=True)
        subprocess.run(["apt-get", "download", "plasma-workspace-wallpapers"], cwd=target, check=True, stdout=subprocess.DEVNULL)
        deb = glob.glob(os.path.join(target, "*.deb"))[0]
        subprocess.run(["dpkg", "-x", deb, os.path.join(target, "x")], check=True)
    return sorted(glob.glob(os.path.join(target, "**/5120x2880.*"), recursive=True))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--prism", default=os.environ.get("PRISM", ".build-media/release/prism"))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--photos", help="folder with the 5120x2880 photos (default: fetch the Debian package into /tmp)")
    parser.add_argument("--only", choices=["a", "b", "c"], action="append")
    args = parser.parse_args()
    parts = args.only or ["a", "b", "c"]
    tmp = tempfile.mkdtemp(prefix="prism-bench-")
    photos = (sorted(glob.glob(os.path.join(args.photos, "**/5120x2880.*"), recursive=True)) if args.photos
              else photos_from_debian("/tmp/prism-bench-photos"))
    prism = args.prism
    print(f"prism: {prism}   runs: {args.runs} (median time, max peak RSS)   photos: {len(photos)}\n")

    if "a" in parts:
        print("(a) seed image step (Pillow LANCZOS + PNG optimize) vs prism media fit --provider anthropic")
        print("    columns per tool: wall s, CPU s (user+sys), peak RSS MB; speedup = seed / prism")
        print(f"{'photo':<28} {'seed wall cpu MB':>18} {'seed out':>9} {'prism wall cpu MB':>19} {'prism out':>9}  speedup wall/CPU  fits")
        wall_ratios, cpu_ratios, inside_ratios = [], [], []
        for i, photo in enumerate(photos):
            seed_out, prism_out = os.path.join(tmp, f"seed{i}.png"), os.path.join(tmp, f"prism{i}.out")
            r = median_of({"seed": [sys.executable, "-c", SEED_STEP, photo, seed_out],
                           "prism": [prism, "media", "fit", photo, "--provider", "anthropic", "-o", prism_out, "--json"]}, args.runs)
            w, h = image_size(prism_out)
            ok = max(w, h) <= ANTHROPIC_LONG_EDGE and w * h <= ANTHROPIC_PIXELS and os.path.getsize(prism_out) <= ANTHROPIC_BYTES
            seed_bytes = os.path.getsize(seed_out)
            wall_ratios.append(r["seed"].wall / r["prism"].wall)
            cpu_ratios.append(r["seed"].cpu / r["prism"].cpu)
            inside_ratios.append(r["seed"].wall / r["prism"].inside)
            print(f"{label(photo):<28} {r['seed']} {seed_bytes:9d} {r['prism']}  {os.path.getsize(prism_out):9d}  "
                  f"{wall_ratios[-1]:5.1f}x {cpu_ratios[-1]:5.1f}x  {'yes' if ok else 'NO'}  in-process {r['prism'].inside:.2f} s"
                  + ("  (seed PNG over 5 MB)" if seed_bytes > ANTHROPIC_BYTES else ""))
        print(f"speedup wall: median {statistics.median(wall_ratios):.1f}x (min {min(wall_ratios):.1f}x); "
              f"CPU: median {statistics.median(cpu_ratios):.1f}x (min {min(cpu_ratios):.1f}x); "
              f"seed wall / prism in-process fit time: median {statistics.median(inside_ratios):.1f}x (min {min(inside_ratios):.1f}x)\n")

    jpegs = [p for p in photos if p.endswith(".jpg")]
    if "b" in parts and jpegs:
        print("(b) JPEG to <= 2,458,624 px JPEG: prism vs vipsthumbnail vs libvips without shrink-on-load (vips resize)")
        print("    columns per tool: wall s, CPU s (user+sys), peak RSS MB")
        print(f"{'photo':<28} {'prism':>18} {'vipsthumbnail':>19} {'vips resize':>19}  prism/vipsthumb wall,CPU  resize/prism CPU")
        vs_thumb, vs_thumb_cpu, vs_full, vs_inside = [], [], [], []
        for i, photo in enumerate(jpegs):
            w, h = image_size(photo)
            scale = min(1.0, (2458624 / (w * h)) ** 0.5)
            box = f"{int(w * scale)}x{int(h * scale)}"
            r = median_of({
                "prism": [prism, "media", "fit", photo, "--max-pixels", "2458624", "--format", "jpeg", "-o", os.path.join(tmp, "b.jpg"), "--json"],
                "vipsthumbnail": ["vipsthumbnail", photo, "-s", box, "-o", os.path.join(tmp, "t.jpg") + "[Q=85,strip,optimize_coding]"],
                "full": ["vips", "resize", photo, os.path.join(tmp, "f.jpg") + "[Q=85,strip,optimize_coding]", str(scale)],
            }, args.runs)
            vs_thumb.append(r["prism"].wall / r["vipsthumbnail"].wall)
            vs_thumb_cpu.append(r["prism"].cpu / r["vipsthumbnail"].cpu)
            vs_full.append(r["full"].cpu / r["prism"].cpu)
            vs_inside.append(r["prism"].inside / r["vipsthumbnail"].wall)
            print(f"{label(photo):<28} {r['prism']} {r['vipsthumbnail']} {r['full']}  {vs_thumb[-1]:12.2f} {vs_thumb_cpu[-1]:5.2f}  {vs_full[-1]:12.2f}  in-process {r['prism'].inside:.2f} s")
        print(f"prism / vipsthumbnail (<= 1 means no slower): wall median {statistics.median(vs_thumb):.2f}, "
              f"CPU median {statistics.median(vs_thumb_cpu):.2f}; prism in-process fit / vipsthumbnail wall: median "
              f"{statistics.median(vs_inside):.2f}; vips resize CPU / prism CPU: median {statistics.median(vs_full):.2f}\n")

    if "c" in parts:
        print("(c) 10-minute MP3 (44.1 kHz stereo, 128 kbit/s) to 16 kHz mono s16 WAV: prism vs ffmpeg")
        mp3 = os.path.join(tmp, "ten-minutes.mp3")
        subprocess.run(["ffmpeg", "-y", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i",
                        "sine=frequency=220:duration=600,aformat=channel_layouts=stereo", "-f", "lavfi", "-i",
                        "anoisesrc=duration=600:amplitude=0.05", "-filter_complex", "[0][1]amix=inputs=2",
                        "-ac", "2", "-c:a", "libmp3lame", "-b:a", "128k", mp3], check=True)
        r = median_of({
            "prism": [prism, "media", "audio", mp3, "--rate", "16000", "--channels", "1", "--format", "wav", "-o", os.path.join(tmp, "p.wav"), "--json"],
            "ffmpeg": ["ffmpeg", "-y", "-nostdin", "-loglevel", "error", "-i", mp3, "-ar", "16000", "-ac", "1", "-c:a", "pcm_s16le", os.path.join(tmp, "f.wav")],
            "ffmpeg-soxr": ["ffmpeg", "-y", "-nostdin", "-loglevel", "error", "-i", mp3, "-af", "aresample=resampler=soxr", "-ar", "16000", "-ac", "1",
                            "-c:a", "pcm_s16le", os.path.join(tmp, "s.wav")],
        }, args.runs)
        print("    wall s, CPU s, peak RSS MB")
        for name, result in r.items():
            print(f"  {name:<12} {result}")
        print(f"prism / ffmpeg: wall {r['prism'].wall / r['ffmpeg'].wall:.2f}, CPU {r['prism'].cpu / r['ffmpeg'].cpu:.2f} "
              f"(ffmpeg's default resampler); wall {r['prism'].wall / r['ffmpeg-soxr'].wall:.2f}, "
              f"CPU {r['prism'].cpu / r['ffmpeg-soxr'].cpu:.2f} (both soxr); prism in-process conversion {r['prism'].inside:.2f} s")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
