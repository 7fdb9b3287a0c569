"""MCUboot image format: header, versions, img_mgmt's slot read, MCUboot's validation, keys.

The layouts used to corrupt images are written here with ``struct`` straight from the format
description, independently of the module under test; the images themselves come from imgtool.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import logging
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import cbor2
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smpsim.device.mcuboot import keys
from smpsim.device.mcuboot.image import (
    APP_TLV,
    IMAGE_MAGIC,
    AppBehaviour,
    Image,
    ImageError,
    ImageFlag,
    ImageHeader,
    ImageProblem,
    ImageVersion,
    KeyRing,
    TlvType,
    Validation,
    public_key,
    read_image,
    validate_image,
)
from smpsim.errors import ConfigError

REPO = Path(__file__).resolve().parents[3]
SAMPLES = REPO / "flash_images"
KEYS = SAMPLES / "keys"
FIRMWARE = REPO / "simulator" / "smpsim" / "firmware"
SLOT = 0x76000
MAX_IMAGE = 0x74000
KINDS = ("rsa-2048", "rsa-3072", "ecdsa-p256", "ed25519")


# -- helpers --------------------------------------------------------------------------------------

def imgtool(*args: str) -> bytes:
    """Run imgtool's command line; its standard output."""
    done = subprocess.run([sys.executable, "-m", "imgtool.main", *args], check=True,
                          capture_output=True)
    return done.stdout


def slot(data: bytes, size: int = SLOT) -> tuple[Callable[[int, int], bytes], int]:
    """A read callable over ``data`` in an otherwise erased slot of ``size`` bytes."""
    flash = data + b"\xff" * (size - len(data))

    def read(offset: int, length: int) -> bytes:
        assert offset >= 0 and offset + length <= size, "read outside the slot"
        return flash[offset:offset + length]

    return read, size


def read(data: bytes, size: int = SLOT) -> Image:
    r, limit = slot(data, size)
    return read_image(r, limit)


def validate(data: bytes, signature: str, keys: KeyRing, size: int = SLOT,
             max_size: int | None = MAX_IMAGE) -> Validation:
    r, limit = slot(data, size)
    return validate_image(r, limit, signature, keys, max_size)


def pem(name: str) -> str:
    return (KEYS / f"insecure-test-{name}.pub.pem").read_text()


def ring(*names: str) -> KeyRing:
    return KeyRing(pem(n) for n in names)


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def sign(tmp_path: Path, *, key: str | None = None, version: str = "1.0.0",
         app: bytes | None = None, size: int = 4096, extra: tuple[str, ...] = ()) -> bytes:
    """An image made by imgtool from a zeroed 0x200-byte header region and ``size`` bytes."""
    src, out = tmp_path / "in.bin", tmp_path / "out.bin"
    src.write_bytes(bytes(0x200) + hashlib.shake_256(version.encode()).digest(size))
    args = ["sign", "--version", version, "--header-size", "512", "--align", "4",
            "--slot-size", str(SLOT), *extra]
    if key is not None:
        args += ["-k", str(KEYS / f"insecure-test-{key}.pem")]
    if app is not None:
        args += ["--custom-tlv", "0x53A5", "0x" + app.hex()]
    imgtool(*args, str(src), str(out))
    return out.read_bytes()


def fields(data: bytes) -> tuple[int, int, int]:
    """(hdr_size, protect_tlv_size, img_size) straight from the header bytes."""
    hdr_size, protect, img_size = struct.unpack_from("<HHI", data, 8)
    return hdr_size, protect, img_size


def unprotected_start(data: bytes) -> int:
    hdr_size, protect, img_size = fields(data)
    return hdr_size + img_size + protect


def records(data: bytes) -> list[tuple[int, bytes]]:
    """The unprotected TLV records of a well-formed image."""
    start = unprotected_start(data)
    magic, tot = struct.unpack_from("<HH", data, start)
    assert magic == 0x6907
    out, pos = [], start + 4
    while pos < start + tot:
        kind, length = struct.unpack_from("<HH", data, pos)
        out.append((kind, data[pos + 4:pos + 4 + length]))
        pos += 4 + length
    return out


def with_unprotected(data: bytes, recs: list[tuple[int, bytes]], tot: int | None = None) -> bytes:
    """``data`` with its unprotected TLV block replaced by ``recs``."""
    body = b"".join(struct.pack("<HH", k, len(v)) + v for k, v in recs)
    info = struct.pack("<HH", 0x6907, 4 + len(body) if tot is None else tot)
    return data[:unprotected_start(data)] + info + body


def patch(data: bytes, offset: int, new: bytes) -> bytes:
    return data[:offset] + new + data[offset + len(new):]


def load_build() -> ModuleType:
    spec = importlib.util.spec_from_file_location("flash_images_build", SAMPLES / "build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


# -- constants, header, version -------------------------------------------------------------------

def test_tlv_type_numbers_match_image_h() -> None:
    assert IMAGE_MAGIC == 0x96F3B83D
    assert APP_TLV == 0x53A5
    assert {t.name: t.value for t in TlvType} == {
        "KEYHASH": 0x01, "PUBKEY": 0x02, "SHA256": 0x10, "SHA384": 0x11, "SHA512": 0x12,
        "RSA2048_PSS": 0x20, "ECDSA224": 0x21, "ECDSA_SIG": 0x22, "RSA3072_PSS": 0x23,
        "ED25519": 0x24, "SIG_PURE": 0x25, "ENC_RSA2048": 0x30, "ENC_KW": 0x31,
        "ENC_EC256": 0x32, "ENC_X25519": 0x33, "ENC_X25519_SHA512": 0x34, "DEPENDENCY": 0x40,
        "SEC_CNT": 0x50, "BOOT_RECORD": 0x60, "DECOMP_SIZE": 0x70, "DECOMP_SHA": 0x71,
        "DECOMP_SIGNATURE": 0x72, "COMP_DEC_SIZE": 0x73, "UUID_VID": 0x74, "UUID_CID": 0x75}
    assert ImageFlag.NON_BOOTABLE == 0x10 and ImageFlag.ROM_FIXED == 0x100
    assert ImageProblem.NO_IMAGE == 3 and ImageProblem.INVALID_IMAGE_HEADER_MAGIC == 23


def test_header_parses_every_field() -> None:
    raw = struct.pack("<IIHHII BBHI I", 0x96F3B83D, 0x2000_0000, 0x200, 0x28, 0x1234,
                      0x30, 1, 2, 0x0304, 0x05060708, 0)
    header = ImageHeader.parse(raw + b"tail")
    assert header == ImageHeader(magic=0x96F3B83D, load_addr=0x2000_0000, hdr_size=0x200,
                                 protect_tlv_size=0x28, img_size=0x1234,
                                 flags=ImageFlag.NON_BOOTABLE | ImageFlag.RAM_LOAD,
                                 version=ImageVersion(1, 2, 0x0304, 0x05060708))
    assert header.version.build == 0x05060708
    assert not header.bootable
    assert header.tlv_offset == 0x200 + 0x1234
    assert header.hashed_size == 0x200 + 0x1234 + 0x28
    assert header.build() == raw


def test_header_keeps_unknown_flag_bits_and_needs_32_bytes() -> None:
    raw = struct.pack("<IIHHII8sI", IMAGE_MAGIC, 0, 32, 0, 0, 0x8000_0001, bytes(8), 0)
    header = ImageHeader.parse(raw)
    assert int(header.flags) == 0x8000_0001
    assert header.bootable
    with pytest.raises(ValueError, match="32 bytes"):
        ImageHeader.parse(raw[:31])


@pytest.mark.parametrize(("version", "text"), [
    (ImageVersion(1, 2, 3), "1.2.3"),
    (ImageVersion(1, 2, 3, 4), "1.2.3.4"),
    (ImageVersion(0, 0, 0, 0), "0.0.0"),
    (ImageVersion(255, 255, 65535, 4294967295), "255.255.65535.4294967295"),
])
def test_version_renders_as_img_mgmt(version: ImageVersion, text: str) -> None:
    assert str(version) == text


def test_version_parses_imgtool_syntax() -> None:
    assert ImageVersion.parse("1") == ImageVersion(1, 0, 0)
    assert ImageVersion.parse("1.2.3+4").key(use_build=True) == (1, 2, 3, 4)
    for bad in ("", "1.2.3.4", "a.b", "1.2+x", "-1"):
        with pytest.raises(ValueError):
            ImageVersion.parse(bad)


def test_version_compares_without_build_number() -> None:
    assert ImageVersion(1, 2, 3, 9) == ImageVersion(1, 2, 3, 0)
    assert hash(ImageVersion(1, 2, 3, 9)) == hash(ImageVersion(1, 2, 3, 0))
    assert ImageVersion(1, 2, 3, 9) < ImageVersion(1, 2, 4, 0)
    assert ImageVersion(2, 0, 0) > ImageVersion(1, 255, 65535, 7)
    assert ImageVersion(1, 0, 10) >= ImageVersion(1, 0, 9)
    assert sorted([ImageVersion(1, 10), ImageVersion(1, 9), ImageVersion(0, 99)]) == [
        ImageVersion(0, 99), ImageVersion(1, 9), ImageVersion(1, 10)]
    assert ImageVersion(1, 2, 3, 1).key(True) < ImageVersion(1, 2, 3, 2).key(True)
    assert ImageVersion(1, 0, 0) != "1.0.0"


# -- read_image on the samples --------------------------------------------------------------------

SAMPLE_APPS = {
    "factory-1.0.0.bin": AppBehaviour(),
    "factory-1.0.0-hashonly.bin": AppBehaviour(),
    "app-1.1.0.bin": AppBehaviour(version="1.1.0"),
    "app-1.1.0-hashonly.bin": AppBehaviour(version="1.1.0"),
    "app-1.1.0-selfconfirm.bin": AppBehaviour(confirm=True, version="1.1.0"),
    "app-2.0.0-crash.bin": AppBehaviour(boot="crash", version="2.0.0"),
    "app-1.2.0-badhash.bin": AppBehaviour(version="1.2.0"),
    "app-1.3.0-unknown-key.bin": AppBehaviour(version="1.3.0"),
    "app-9.0.0-too-big.bin": AppBehaviour(version="9.0.0"),
}


def test_every_sample_is_listed() -> None:
    assert sorted(p.name for p in SAMPLES.glob("*.bin")) == sorted(SAMPLE_APPS)


@pytest.mark.parametrize("name", sorted(SAMPLE_APPS))
def test_read_image_on_samples(name: str) -> None:
    data = sample(name)
    image = read(data)
    assert str(image.version) == name.split("-")[1].removesuffix(".bin")
    assert image.size == len(data)
    assert image.app == SAMPLE_APPS[name]
    hdr_size, protect, img_size = fields(data)
    assert image.header.hdr_size == hdr_size == 0x200
    assert image.protected_tlv_size == protect
    assert image.unprotected_tlv_size == len(data) - hdr_size - img_size - protect
    assert image.hash == dict(records(data))[0x10]
    covered = hashlib.sha256(data[:hdr_size + img_size + protect]).digest()
    assert (image.hash == covered) == (name != "app-1.2.0-badhash.bin")
    assert (image.tlv(APP_TLV) is None) == name.startswith("factory")
    assert [t.type for t in image.tlvs if t.protected] == ([] if name.startswith("factory")
                                                          else [APP_TLV])
    assert image.header.bootable


def test_read_image_hash_matches_imgtool_digest() -> None:
    out = imgtool("verify", "-k", str(KEYS / "insecure-test-ecdsa-p256.pem"),
                  str(SAMPLES / "app-1.1.0.bin")).decode()
    assert f"Image digest: {read(sample('app-1.1.0.bin')).hash.hex()}" in out


# -- read_image on damaged slots ------------------------------------------------------------------

def problem(data: bytes, size: int = SLOT) -> ImageProblem:
    with pytest.raises(ImageError) as info:
        read(data, size)
    return info.value.code


def test_erased_slot_is_no_image() -> None:
    assert problem(b"") == ImageProblem.NO_IMAGE


def test_bad_magic() -> None:
    data = sample("app-1.1.0-hashonly.bin")
    assert problem(patch(data, 0, struct.pack("<I", 0x96F3B83C))) == (
        ImageProblem.INVALID_IMAGE_HEADER_MAGIC)
    assert problem(bytes(64)) == ImageProblem.INVALID_IMAGE_HEADER_MAGIC


def test_slot_smaller_than_a_header() -> None:
    assert problem(b"", size=16) == ImageProblem.FLASH_READ_FAILED


def test_no_tlvs() -> None:
    data = sample("app-1.1.0-hashonly.bin")
    start = unprotected_start(data)
    assert problem(patch(data, start, b"\x00\x00")) == ImageProblem.NO_TLVS
    assert problem(data[:start]) == ImageProblem.NO_TLVS  # erased where the TLVs should be


def test_header_sizes_past_the_slot() -> None:
    data = sample("factory-1.0.0-hashonly.bin")
    assert problem(data, size=unprotected_start(data)) == ImageProblem.NO_TLVS
    huge = patch(data, 12, struct.pack("<I", 0xFFFF_FF00))  # img_size: overflows u32 with hdr
    assert problem(huge) == ImageProblem.NO_TLVS


def test_overrunning_tlv() -> None:
    data = sample("factory-1.0.0-hashonly.bin")
    recs = records(data)
    longer = with_unprotected(data, [(0x01, b"k" * 8), *recs])
    start = unprotected_start(longer)
    assert problem(patch(longer, start + 6, struct.pack("<H", 200))) == ImageProblem.INVALID_TLV
    # the block's own size cuts a record in two
    assert problem(with_unprotected(data, recs, tot=4 + 20)) == ImageProblem.TLV_INVALID_SIZE
    assert problem(with_unprotected(data, [(0x01, b"k" * 8), *recs], tot=4 + 10)) == (
        ImageProblem.INVALID_TLV)


def test_erased_tlv_record() -> None:
    data = sample("factory-1.0.0-hashonly.bin")
    recs = records(data)
    assert problem(with_unprotected(data, recs, tot=4 + 36 + 8)) == ImageProblem.INVALID_TLV
    zephyr_marker = with_unprotected(data, recs) + struct.pack("<HH", 0xFF, 0xFFFF)
    grown = patch(zephyr_marker, unprotected_start(data) + 2, struct.pack("<H", 4 + 36 + 4))
    assert problem(grown) == ImageProblem.INVALID_TLV


def test_tlv_block_past_the_slot() -> None:
    data = sample("factory-1.0.0-hashonly.bin")
    assert problem(with_unprotected(data, records(data), tot=0xFFFF), size=len(data) + 100) == (
        ImageProblem.INVALID_TLV)
    assert problem(with_unprotected(data, records(data), tot=2)) == ImageProblem.INVALID_TLV


def test_two_hash_tlvs() -> None:
    data = sample("app-1.1.0-hashonly.bin")
    recs = records(data)
    assert problem(with_unprotected(data, recs + recs)) == (
        ImageProblem.TLV_MULTIPLE_HASHES_FOUND)


def test_hash_tlv_of_wrong_length() -> None:
    data = sample("app-1.1.0-hashonly.bin")
    assert problem(with_unprotected(data, [(0x10, b"h" * 31)])) == ImageProblem.TLV_INVALID_SIZE


def test_missing_hash() -> None:
    data = sample("app-1.1.0-hashonly.bin")
    assert problem(with_unprotected(data, [(0x11, b"h" * 32)])) == ImageProblem.HASH_NOT_FOUND
    assert problem(with_unprotected(data, [])) == ImageProblem.HASH_NOT_FOUND


def test_protected_block_size_must_match_header() -> None:
    data = sample("app-1.1.0-hashonly.bin")
    _, protect, _ = fields(data)
    assert problem(patch(data, 10, struct.pack("<H", protect + 4))) == ImageProblem.INVALID_TLV


def test_protected_block_may_be_absent_whatever_the_header_says() -> None:
    # Zephyr looks for a 0x6908 block and goes on without one.
    data = sample("factory-1.0.0-hashonly.bin")
    image = read(patch(data, 10, struct.pack("<H", 8)))
    assert image.protected_tlv_size == 0
    assert image.hash == read(data).hash


def test_corrupt_payload_still_listed_with_its_hash() -> None:
    data = sample("app-1.2.0-badhash.bin")
    assert read(data).hash == dict(records(data))[0x10]
    assert read(patch(data, 0x300, b"\x00" * 64)).hash == read(data).hash


# -- the application TLV --------------------------------------------------------------------------

def test_app_behaviour_decoding() -> None:
    assert AppBehaviour.from_tlv(cbor2.dumps({})) == AppBehaviour()
    assert AppBehaviour.from_tlv(cbor2.dumps({"confirm": True, "boot": "hang", "version": "x",
                                              "future": [1, 2], 7: None})) == (
        AppBehaviour(confirm=True, boot="hang", version="x"))
    for app in (AppBehaviour(), AppBehaviour(True, "crash", "2.0.0")):
        assert AppBehaviour.from_tlv(app.to_tlv()) == app
    assert AppBehaviour(confirm=True).to_tlv() == bytes.fromhex(
        "a264626f6f74626f6b67636f6e6669726df5")


@pytest.mark.parametrize("value", [
    b"", b"\xff", b"\xa1", cbor2.dumps([1]), cbor2.dumps("confirm"),
    cbor2.dumps({"confirm": 1}), cbor2.dumps({"boot": "reboot"}), cbor2.dumps({"boot": 0}),
    cbor2.dumps({"version": 1}), cbor2.dumps({}) + b"\x00",
])
def test_malformed_app_tlv(value: bytes) -> None:
    with pytest.raises(ImageError) as info:
        AppBehaviour.from_tlv(value)
    assert info.value.code == ImageProblem.UNKNOWN


def test_image_with_malformed_app_tlv_runs_plain(tmp_path: Path,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    data = sign(tmp_path, app=b"\xa1\x64boot\x01")
    with caplog.at_level(logging.WARNING):
        image = read(data)
    assert image.app == AppBehaviour()
    assert image.tlv(APP_TLV) == b"\xa1\x64boot\x01"
    assert "plain smp_svr" in caplog.text


# -- keys -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", [*KINDS, "unknown-ecdsa-p256"])
def test_keyhash_equals_imgtool_getpubhash(name: str) -> None:
    expected = imgtool("getpubhash", "-k", str(KEYS / f"insecure-test-{name}.pem"), "-e", "raw")
    assert len(expected) == 32
    key = public_key(pem(name))
    assert key.keyhash == expected
    # the private key file gives the same public key
    assert public_key((KEYS / f"insecure-test-{name}.pem").read_text()).keyhash == expected
    assert key.kind == name.removeprefix("unknown-")


def test_keyhash_encodings() -> None:
    rsa_key = public_key(pem("rsa-2048"))
    assert rsa_key.encoded == rsa_key.key.public_bytes(serialization.Encoding.DER,
                                                       serialization.PublicFormat.PKCS1)
    ec_key = public_key(pem("ecdsa-p256"))
    assert ec_key.encoded == ec_key.key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert len(public_key(pem("ed25519")).encoded) == 44  # SPKI of a 32-byte key


@pytest.mark.parametrize("name", [*KINDS, "unknown-ecdsa-p256"])
def test_a_public_pem_reads_as_the_library_reads_it(name: str) -> None:
    """MCUboot's key shapes are read without cryptography's serialization package: the same
    key, kind and embedded bytes as the library's loader gives."""
    text = pem(name)
    ours = keys._read_public_pem(text)
    assert ours is not None
    theirs = serialization.load_pem_public_key(text.encode())
    assert ours.key.public_bytes(serialization.Encoding.DER,
                                 serialization.PublicFormat.SubjectPublicKeyInfo) == \
        theirs.public_bytes(serialization.Encoding.DER,
                            serialization.PublicFormat.SubjectPublicKeyInfo)
    assert ours.encoded == keys._encoded(theirs)  # type: ignore[arg-type]
    assert ours.kind == name.removeprefix("unknown-")


def test_other_pems_go_to_the_library() -> None:
    rsa_pem = pem("rsa-2048")
    der = base64.b64decode("".join(rsa_pem.strip().splitlines()[1:-1]))
    assert der[:2] == b"\x30\x82"
    long_form = der[:1] + b"\x83\x00" + der[2:]  # a length with a leading zero: BER, not DER
    assert keys._read_public_pem(_armor(long_form)) is None
    p256 = ec.generate_private_key(ec.SECP256R1())
    fresh = p256.public_key().public_bytes(serialization.Encoding.DER,
                                                serialization.PublicFormat.SubjectPublicKeyInfo)
    private = p256.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption()).decode()
    assert keys._read_public_pem(private) is None
    assert public_key(private).kind == "ecdsa-p256"  # through the library
    rsa1024 = rsa.generate_private_key(65537, 1024).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    assert keys._read_public_pem(rsa1024) is None
    bad_point = _P256_PREFIX + bytes(64)  # (0, 0) is not on the curve
    assert keys._read_public_pem(_armor(bad_point)) is None
    with pytest.raises(ConfigError, match="PEM"):
        public_key(_armor(bad_point))
    assert keys._read_public_pem(_armor(fresh)) is not None


def test_keys_the_library_refuses_are_refused_when_they_load() -> None:
    """The P-256 point and RSA exponent checks the library makes when it loads a key are made
    when the PEM is read (the library's own key object is made later, on a first check)."""
    rsa_pem = pem("rsa-2048")
    der = base64.b64decode("".join(rsa_pem.strip().splitlines()[1:-1]))
    n, e, _ = keys._rsa_numbers(der)
    for exponent in (4, 1, n + 2):
        numbers = keys._der(0x30, keys._der_int(n) + keys._der_int(exponent))
        bad = keys._der(0x30, keys._RSA_ALGORITHM + keys._der(0x03, b"\0" + numbers))
        assert keys._read_public_pem(_armor(bad)) is None
        with pytest.raises(ConfigError):
            public_key(_armor(bad))
    assert e == 65537


@settings(max_examples=60)
@given(point=st.binary(min_size=64, max_size=64), on_curve=st.booleans())
def test_the_p256_point_check_agrees_with_the_library(point: bytes, on_curve: bool) -> None:
    if on_curve:  # a point of the curve, from a private key hypothesis picked
        scalar = int.from_bytes(point, "big") % (2**255) + 1
        point = ec.derive_private_key(scalar, ec.SECP256R1()).public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)[1:]
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b"\x04" + point)
        library = True
    except ValueError:
        library = False
    assert keys._on_p256(point) is library
    assert (keys._read_public_pem(_armor(_P256_PREFIX + point)) is not None) is library


def test_the_key_object_is_made_on_first_use_from_the_embedded_bytes() -> None:
    for kind in KINDS:
        key = keys._read_public_pem(pem(kind))  # (not public_key's, which keeps its keys)
        assert key is not None and "key" not in vars(key)
        public = serialization.load_pem_public_key(pem(kind).encode())
        assert key.key.public_bytes(serialization.Encoding.DER,
                                    serialization.PublicFormat.SubjectPublicKeyInfo) == \
            public.public_bytes(serialization.Encoding.DER,
                                serialization.PublicFormat.SubjectPublicKeyInfo)
        assert key.key is key.key  # made once


def test_the_packaged_keys_load_without_the_serialization_package() -> None:
    code = ("import sys; from smpsim.device.mcuboot.builtin import key_pem; "
            "from smpsim.device.mcuboot.keys import KeyRing; "
            "KeyRing(key_pem(f'insecure-test-{k}') for k in sys.argv[1:]); "
            "sys.exit('cryptography.hazmat.primitives.serialization' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code, *KINDS], check=False).returncode == 0


def _armor(der: bytes) -> str:
    body = base64.b64encode(der).decode()
    lines = [body[i:i + 64] for i in range(0, len(body), 64)]
    return "\n".join(["-----BEGIN PUBLIC KEY-----", *lines, "-----END PUBLIC KEY-----"]) + "\n"


_P256_PREFIX = bytes.fromhex("3059301306072a8648ce3d020106082a8648ce3d03010703420004")


def test_keyhash_tlv_of_signed_samples_names_the_key() -> None:
    assert dict(records(sample("app-1.1.0.bin")))[0x01] == public_key(pem("ecdsa-p256")).keyhash
    assert dict(records(sample("app-1.3.0-unknown-key.bin")))[0x01] == (
        public_key(pem("unknown-ecdsa-p256")).keyhash)


def test_keyring_find_compares_the_tlv_length_only() -> None:
    keys = ring("ed25519", "ecdsa-p256")
    assert len(keys) == 2
    ecdsa = keys.keys[1]
    assert keys.find(ecdsa.keyhash) is ecdsa
    assert keys.find(ecdsa.keyhash[:4]) is ecdsa
    assert keys.find(b"") is keys.keys[0]
    assert keys.find(b"\x00" * 32) is None
    assert keys.find(ecdsa.keyhash + b"\x00") is None


def test_keyring_refuses_keys_mcuboot_cannot_use() -> None:
    p384 = ec.generate_private_key(ec.SECP384R1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    rsa1024 = rsa.generate_private_key(65537, 1024).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    for bad, match in ((p384, "P-256"), (rsa1024, "1024"), ("not a key", "PEM")):
        with pytest.raises(ConfigError, match=match):
            KeyRing([bad])


# -- validate_image -------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", KINDS)
def test_validate_good_image_per_key_type(tmp_path: Path, kind: str) -> None:
    data = sign(tmp_path, key=kind, app=AppBehaviour(confirm=True).to_tlv())
    result = validate(data, kind, ring(kind))
    assert result == Validation(True, "ok", unprotected_start(data))
    # the same image under a hash-only MCUboot: signature TLVs are ignored
    assert validate(data, "none", KeyRing()).ok
    # a ring without the key: the signature is ignored, and none is left
    other = "ed25519" if kind != "ed25519" else "ecdsa-p256"
    assert not validate(data, kind, ring(other)).ok


@pytest.mark.parametrize("kind", KINDS)
def test_validate_rejects_a_damaged_signature(tmp_path: Path, kind: str) -> None:
    data = sign(tmp_path, key=kind)
    sig_type, sig = records(data)[-1]
    assert sig_type in (0x20, 0x22, 0x23, 0x24)
    offset = len(data) - len(sig) + len(sig) // 2
    broken = patch(data, offset, bytes([data[offset] ^ 0x01]))
    result = validate(broken, kind, ring(kind))
    assert not result.ok
    assert "signature" in result.reason


def test_validate_padded_ecdsa_signature(tmp_path: Path) -> None:
    data = sign(tmp_path, key="ecdsa-p256", extra=("--pad-sig",))
    assert len(records(data)[-1][1]) == 72
    assert validate(data, "ecdsa-p256", ring("ecdsa-p256")).ok


def test_validate_key_of_another_type(tmp_path: Path) -> None:
    data = sign(tmp_path, key="ecdsa-p256")
    mixed = KeyRing([pem("ed25519"), pem("ecdsa-p256")])
    assert validate(data, "ecdsa-p256", mixed).ok
    result = validate(data, "ed25519", mixed)
    assert not result.ok and result.reason == "no signature by a trusted key"
    # a KEYHASH naming the Ed25519 key in front of an ECDSA signature
    recs = [(k, public_key(pem("ed25519")).keyhash if k == 0x01 else v) for k, v in records(data)]
    result = validate(with_unprotected(data, recs), "ecdsa-p256", mixed)
    assert not result.ok and result.reason == "key is ed25519, this MCUboot checks ecdsa-p256"


def test_validate_samples() -> None:
    keys = ring("ecdsa-p256")
    assert validate(sample("factory-1.0.0.bin"), "ecdsa-p256", keys).ok
    assert validate(sample("app-1.1.0-hashonly.bin"), "none", keys).ok
    unsigned = validate(sample("app-1.1.0-hashonly.bin"), "ecdsa-p256", keys)
    assert not unsigned.ok and unsigned.reason == "no signature by a trusted key"
    bad = validate(sample("app-1.2.0-badhash.bin"), "ecdsa-p256", keys)
    assert not bad.ok and "hash" in bad.reason
    assert not validate(sample("app-1.2.0-badhash.bin"), "none", keys).ok
    unknown = validate(sample("app-1.3.0-unknown-key.bin"), "ecdsa-p256", keys)
    assert not unknown.ok and unknown.reason == "no signature by a trusted key"
    assert validate(sample("app-1.3.0-unknown-key.bin"), "ecdsa-p256",
                    ring("unknown-ecdsa-p256")).ok


def test_validate_too_big() -> None:
    data = sample("app-9.0.0-too-big.bin")
    assert MAX_IMAGE < len(data) < SLOT
    result = validate(data, "ecdsa-p256", ring("ecdsa-p256"))
    assert not result.ok and "exceeds" in result.reason
    assert result.hashed_bytes == unprotected_start(data)
    assert validate(data, "ecdsa-p256", ring("ecdsa-p256"), max_size=None).ok


def test_validate_protected_tlvs_are_covered(tmp_path: Path) -> None:
    data = sign(tmp_path, app=AppBehaviour().to_tlv())
    hdr_size, _, img_size = fields(data)
    assert validate(data, "none", KeyRing()).ok
    offset = hdr_size + img_size + 8  # first byte of the application TLV's value
    tampered = patch(data, offset, bytes([data[offset] ^ 0x20]))
    result = validate(tampered, "none", KeyRing())
    assert not result.ok and "hash" in result.reason


@pytest.mark.parametrize(("flags", "reason"), [
    (ImageFlag.ENCRYPTED_AES128, "encrypted"),
    (ImageFlag.COMPRESSED_LZMA2, "compressed"),
    (ImageFlag.NON_BOOTABLE, "non-bootable"),
])
def test_validate_refuses_flags(flags: ImageFlag, reason: str) -> None:
    data = patch(sample("factory-1.0.0-hashonly.bin"), 16, struct.pack("<I", flags))
    result = validate(data, "none", KeyRing())
    assert not result.ok and reason in result.reason and result.hashed_bytes == 0


@pytest.mark.parametrize(("data", "reason"), [
    (b"", "erased"),
    (bytes(32), "magic"),
])
def test_validate_empty_slots(data: bytes, reason: str) -> None:
    result = validate(data, "none", KeyRing())
    assert not result.ok and reason in result.reason and result.hashed_bytes == 0


def test_validate_structural_damage() -> None:
    data = sample("app-1.1.0-hashonly.bin")
    _, protect, _ = fields(data)
    assert "protected" in validate(patch(data, 10, struct.pack("<H", protect + 4)), "none",
                                   KeyRing()).reason
    no_prot = patch(sample("factory-1.0.0-hashonly.bin"), 10, struct.pack("<H", 8))
    assert "protected" in validate(no_prot, "none", KeyRing()).reason
    assert validate(with_unprotected(data, records(data) * 2), "none", KeyRing()).ok
    assert "SHA-256 TLV of 31" in validate(with_unprotected(data, [(0x10, b"h" * 31)]), "none",
                                           KeyRing()).reason
    assert validate(with_unprotected(data, []), "none", KeyRing()).reason == "no SHA-256 TLV"
    assert "overruns" in validate(with_unprotected(data, records(data), tot=4 + 20), "none",
                                  KeyRing()).reason
    assert not validate(data, "none", KeyRing(), size=16).ok


def test_validate_refuses_an_unknown_signature_type() -> None:
    with pytest.raises(ValueError, match="signature type"):
        validate(sample("factory-1.0.0.bin"), "ecdsa-p384", KeyRing())


BASE = sample("factory-1.0.0.bin")
KEYS_P256 = ring("ecdsa-p256")
EDGES = [*range(32), *range(len(BASE) - 200, len(BASE))]  # header and TLV blocks


def mutate(edits: list[tuple[int, int]]) -> bytes:
    data = bytearray(BASE)
    for offset, value in edits:
        data[offset] = value
    return bytes(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(
    st.binary(max_size=300),
    st.lists(st.tuples(st.integers(0, len(BASE) - 1), st.integers(0, 255)), max_size=8).map(mutate),
    st.lists(st.tuples(st.sampled_from(EDGES), st.integers(0, 255)), min_size=1,
             max_size=6).map(mutate),
))
def test_garbage_never_raises(data: bytes) -> None:
    for size in (SLOT, max(len(data), 40)):
        result = validate(data, "ecdsa-p256", KEYS_P256, size=size, max_size=None)
        assert isinstance(result, Validation)
        assert result.ok == (data == BASE), result
        try:
            image = read(data, size)
        except ImageError as exc:
            assert exc.code in set(ImageProblem)
        else:
            assert image.size <= size and len(image.hash) == 32


# -- packaged factory images and reproducible builds ----------------------------------------------

@pytest.mark.parametrize("signature", ["none", *KINDS])
def test_packaged_factory_images(signature: str) -> None:
    data = (FIRMWARE / f"factory-{signature}.bin").read_bytes()
    keys = KeyRing() if signature == "none" else KeyRing(
        [(FIRMWARE / f"insecure-test-{signature}.pub.pem").read_text()])
    smallest_slot = 0xA000  # the fast profile
    assert validate(data, signature, keys, size=smallest_slot, max_size=smallest_slot - 0x800).ok
    image = read(data)
    assert image.version == ImageVersion(1, 0, 0) and str(image.version) == "1.0.0"
    assert image.app == AppBehaviour() and image.tlv(APP_TLV) is None
    assert image.hash == read(sample("factory-1.0.0.bin")).hash  # one payload for every key


def test_sample_factory_images_are_the_packaged_ones() -> None:
    assert sample("factory-1.0.0.bin") == (FIRMWARE / "factory-ecdsa-p256.bin").read_bytes()
    assert sample("factory-1.0.0-hashonly.bin") == (FIRMWARE / "factory-none.bin").read_bytes()


def test_deterministic_images_rebuild_identically(tmp_path: Path) -> None:
    build = load_build()
    specs = {s.name: s for s in build.samples()}
    for name in ("factory-1.0.0-hashonly.bin", "app-1.1.0-hashonly.bin"):
        assert build.sign(specs[name], tmp_path) == sample(name)
    factory = specs["factory-1.0.0.bin"]
    ed25519 = build.Spec("factory-ed25519.bin", "1.0.0", factory.body, key="ed25519")
    assert build.sign(ed25519, tmp_path) == (FIRMWARE / "factory-ed25519.bin").read_bytes()


def test_build_keeps_an_image_that_differs_only_in_its_signature(tmp_path: Path) -> None:
    build = load_build()
    spec = {s.name: s for s in build.samples()}["app-1.1.0.bin"]
    fresh = build.sign(spec, tmp_path)
    assert fresh != sample("app-1.1.0.bin")  # ECDSA: a new nonce every time
    target = tmp_path / "app.bin"
    target.write_bytes(sample("app-1.1.0.bin"))
    build.REPO = tmp_path  # for its messages
    build.write_stable(target, fresh)
    assert target.read_bytes() == sample("app-1.1.0.bin")
    other = build.sign(build.Spec("x", "1.1.1", spec.body, app=spec.app), tmp_path)
    build.write_stable(target, other)
    assert target.read_bytes() == other
