"""Rebuild smpsim's sample images and the factory images shipped in the package (``make images``).

Everything is made with imgtool's own command line, so the images are exactly what a user's
``imgtool sign`` gives. Payloads are deterministic (SHAKE-256 of a fixed seed behind a zeroed
0x200-byte header region, as a Zephyr ``zephyr.bin`` has), so hash-only and Ed25519 images
come out byte for byte the same on every run. RSA-PSS and ECDSA signatures are randomised by
nature; so that ``make images`` does not churn the repository, an existing image is kept when
the new one differs from it only in its signature bytes (same header, payload, protected TLVs,
hash and key).

Keys are made once with ``imgtool keygen`` and never regenerated: delete one to get a new one.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "simulator"))

from smpsim.device.mcuboot.builtin import SIGNATURES_FILE  # noqa: E402
from smpsim.device.mcuboot.image import (  # noqa: E402
    APP_TLV,
    AppBehaviour,
    Image,
    ImageError,
    TlvType,
    check_signature,
    read_image,
)
from smpsim.device.mcuboot.keys import public_key  # noqa: E402

KEYS = HERE / "keys"
FIRMWARE = REPO / "simulator" / "smpsim" / "firmware"

HEADER_SIZE = 0x200
"""``CONFIG_ROM_START_OFFSET`` of a Cortex-M Zephyr build: the header region of every image."""
ALIGN = 4
"""nRF52840 flash write block."""
SLOT_SIZE = 0x76000
"""nRF52840 DK slot (118 pages of 4 KiB)."""
FACTORY_PAYLOAD = 24 * 1024
"""Factory payload: small enough for every profile's slots (the smallest holds 40 KiB)."""
APP_PAYLOAD = 32 * 1024
"""Payload of the sample application images."""
TOO_BIG = 0x75000
"""Total size of the too-big image: more than the 0x74000 bytes swap-move can take from an
nRF52840 DK slot, less than the slot, so an upload succeeds and MCUboot refuses it."""

KEY_TYPES = ("rsa-2048", "rsa-3072", "ecdsa-p256", "ed25519")
UNKNOWN_KEY = "unknown-ecdsa-p256"
DEFAULT_KEY = "ecdsa-p256"
DEMO_IMAGES = ("app-1.1.0.bin", "app-2.0.0-crash.bin")
"""Samples shipped in the package too, for ``smpsim demo update`` and ``smpsim demo rollback``."""
SIGNATURE_TLVS = {TlvType.RSA2048_PSS, TlvType.RSA3072_PSS, TlvType.ECDSA_SIG, TlvType.ED25519}


def imgtool(*args: str) -> None:
    """Run imgtool's command line with this interpreter."""
    subprocess.run([sys.executable, "-m", "imgtool.main", *args], check=True)


def key_path(name: str) -> Path:
    """The private key file of one of our insecure test keys."""
    return KEYS / f"insecure-test-{name}.pem"


def make_keys() -> None:
    """Generate the missing keys (never an existing one) and write every public key."""
    KEYS.mkdir(exist_ok=True)
    for name, kind in [*((k, k) for k in KEY_TYPES), (UNKNOWN_KEY, "ecdsa-p256")]:
        path = key_path(name)
        if not path.exists():
            print(f"generating {path.relative_to(REPO)}")
            imgtool("keygen", "-k", str(path), "-t", kind)
        imgtool("getpub", "-k", str(path), "-e", "pem",
                "-o", str(KEYS / f"insecure-test-{name}.pub.pem"))


def payload(seed: str, size: int) -> bytes:
    """A zeroed header region, then ``size`` deterministic pseudo-random bytes."""
    return bytes(HEADER_SIZE) + hashlib.shake_256(seed.encode()).digest(size)


def big_payload(seed: str, total: int) -> bytes:
    """A payload for an image of about ``total`` bytes: one 4 KiB pseudo-random block repeated
    (so that git stores it in a few KiB)."""
    block = hashlib.shake_256(seed.encode()).digest(4096)
    body = (block * (total // 4096 + 1))[:total - HEADER_SIZE - 0x200]
    return bytes(HEADER_SIZE) + body


@dataclass(frozen=True)
class Spec:
    """One image to sign."""

    name: str
    """Output file name."""
    version: str
    """imgtool ``--version``."""
    body: bytes
    """Input binary, header region included."""
    key: str | None = DEFAULT_KEY
    """Signing key name; ``None`` for a hash-only image."""
    app: AppBehaviour | None = None
    """Simulated application; ``None`` for a plain smp_svr image (no :data:`APP_TLV`)."""
    slot_size: int = SLOT_SIZE
    """imgtool ``--slot-size``."""
    flip: int | None = None
    """Offset of a byte to invert after signing (a payload whose hash no longer matches)."""


def sign(spec: Spec, tmp: Path) -> bytes:
    """Sign ``spec`` with imgtool and return the image."""
    src, out = tmp / f"{spec.name}.in", tmp / spec.name
    src.write_bytes(spec.body)
    args = ["sign", "--version", spec.version, "--header-size", str(HEADER_SIZE),
            "--align", str(ALIGN), "--slot-size", str(spec.slot_size)]
    if spec.key is not None:
        args += ["-k", str(key_path(spec.key))]
    if spec.app is not None:
        args += ["--custom-tlv", f"{APP_TLV:#06x}", "0x" + spec.app.to_tlv().hex()]
    imgtool(*args, str(src), str(out))
    data = bytearray(out.read_bytes())
    if spec.flip is not None:
        data[spec.flip] ^= 0xFF
    return bytes(data)


def _image(data: bytes) -> Image:
    return read_image(lambda off, n: data[off:off + n], len(data))


def _unsigned_form(data: bytes) -> tuple[object, ...] | None:
    """The image with its signature values left out, or ``None`` if it does not parse."""
    try:
        image = _image(data)
    except ImageError:
        return None
    start = image.header.hashed_size
    return (data[:start], data[image.size:],
            tuple((t.type, b"" if t.type in SIGNATURE_TLVS else t.value) for t in image.tlvs))


def write_stable(path: Path, data: bytes) -> None:
    """Write ``data`` unless ``path`` already holds the same image up to its signature."""
    if path.exists():
        old = path.read_bytes()
        if old == data or (_unsigned_form(old) is not None
                           and _unsigned_form(old) == _unsigned_form(data)):
            print(f"unchanged {path.relative_to(REPO)}")
            return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    print(f"wrote     {path.relative_to(REPO)}")


def samples() -> list[Spec]:
    """The sample images in flash_images/ (see README.md there)."""
    factory = payload("smpsim factory 1.0.0", FACTORY_PAYLOAD)
    app = payload("smpsim app 1.1.0", APP_PAYLOAD)
    return [
        Spec("factory-1.0.0.bin", "1.0.0", factory),
        Spec("factory-1.0.0-hashonly.bin", "1.0.0", factory, key=None),
        Spec("app-1.1.0.bin", "1.1.0", app, app=AppBehaviour(version="1.1.0")),
        Spec("app-1.1.0-hashonly.bin", "1.1.0", app, key=None,
             app=AppBehaviour(version="1.1.0")),
        Spec("app-1.1.0-selfconfirm.bin", "1.1.0",
             payload("smpsim app 1.1.0 selfconfirm", APP_PAYLOAD),
             app=AppBehaviour(confirm=True, version="1.1.0")),
        Spec("app-2.0.0-crash.bin", "2.0.0", payload("smpsim app 2.0.0 crash", APP_PAYLOAD),
             app=AppBehaviour(boot="crash", version="2.0.0")),
        Spec("app-1.2.0-badhash.bin", "1.2.0", payload("smpsim app 1.2.0 badhash", APP_PAYLOAD),
             app=AppBehaviour(version="1.2.0"), flip=HEADER_SIZE + 0x100),
        Spec("app-1.3.0-unknown-key.bin", "1.3.0",
             payload("smpsim app 1.3.0 unknown key", APP_PAYLOAD), key=UNKNOWN_KEY,
             app=AppBehaviour(version="1.3.0")),
        Spec("app-9.0.0-too-big.bin", "9.0.0", big_payload("smpsim app 9.0.0 too big", TOO_BIG),
             slot_size=0x100000, app=AppBehaviour(version="9.0.0")),
    ]


def signatures() -> str:
    """The signatures file of the packaged signed images (see ``SIGNATURES_FILE``): each image's
    hash recomputed and its signature verified with cryptography before it is listed."""
    keys = {key.keyhash: key for key in (public_key((FIRMWARE / f"insecure-test-{kind}.pub.pem")
                                                    .read_text()) for kind in KEY_TYPES)}
    lines = ["# Signed images of this folder, each verified with cryptography by `make images`",
             "# (flash_images/build.py): name, SHA-256 of the key, image hash, signature TLV."]
    for path in sorted(FIRMWARE.glob("*.bin")):
        data = path.read_bytes()
        image = _image(data)
        tlvs = {t.type: t.value for t in image.tlvs}
        if TlvType.KEYHASH not in tlvs:
            continue  # hash only
        key = keys[tlvs[TlvType.KEYHASH]]
        digest = hashlib.sha256(data[:image.size - image.unprotected_tlv_size]).digest()
        sig = next(value for kind, value in tlvs.items() if kind in SIGNATURE_TLVS)
        if digest != tlvs[TlvType.SHA256] or not check_signature(key, sig, digest):
            raise SystemExit(f"{path.name}: its hash or signature does not verify")
        lines.append(f"{path.name} {key.keyhash.hex()} {digest.hex()} {sig.hex()}")
    return "\n".join(lines) + "\n"


def main() -> None:
    """Make the keys, the samples and the packaged factory images."""
    make_keys()
    built: dict[str, bytes] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for spec in samples():
            path = HERE / spec.name
            write_stable(path, sign(spec, Path(tmp)))
            built[spec.name] = path.read_bytes()
        factory = payload("smpsim factory 1.0.0", FACTORY_PAYLOAD)
        for signature in ("none", *KEY_TYPES):
            path = FIRMWARE / f"factory-{signature}.bin"
            if signature == "none":
                data = built["factory-1.0.0-hashonly.bin"]
            elif signature == DEFAULT_KEY:
                data = built["factory-1.0.0.bin"]
            else:
                data = sign(Spec(path.name, "1.0.0", factory, key=signature), Path(tmp))
            write_stable(path, data)
    for kind in KEY_TYPES:
        shutil.copyfile(KEYS / f"insecure-test-{kind}.pub.pem",
                        FIRMWARE / f"insecure-test-{kind}.pub.pem")
    for name in DEMO_IMAGES:  # `smpsim demo` uploads them from the installed package
        write_stable(FIRMWARE / name, built[name])
    listed = FIRMWARE / SIGNATURES_FILE
    text = signatures()
    if not listed.exists() or listed.read_text() != text:
        listed.write_text(text)
        print(f"wrote     {listed.relative_to(REPO)}")


if __name__ == "__main__":
    main()
