"""Encryption at rest with ``cryptography``'s Fernet (AES-128-CBC + HMAC-SHA256, authenticated):
a changed byte is refused instead of decrypted into silent garbage, and key rotation
(``MultiFernet.rotate``) re-encrypts every file under the new key without losing a row.

The cipher is a parameter (:class:`FernetCipher` by default) so a counterfactual can hand the
lab an unauthenticated one and watch the tamper and rotation checks catch it.
"""

from __future__ import annotations

import base64
import hashlib
import random
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class FernetCipher:
    """Authenticated encryption (Fernet): a wrong key or a changed byte raises ``InvalidToken``."""

    @staticmethod
    def new_key() -> bytes:
        return Fernet.generate_key()

    @staticmethod
    def encrypt(data: bytes, key: bytes) -> bytes:
        return Fernet(key).encrypt(data)

    @staticmethod
    def decrypt(token: bytes, *keys: bytes) -> bytes:
        """Decrypt with the first key that authenticates the token (``InvalidToken`` if none)."""
        return MultiFernet([Fernet(k) for k in keys]).decrypt(token)

    @staticmethod
    def rotate(token: bytes, old: bytes, new: bytes) -> bytes:
        """Re-encrypt under ``new`` (``MultiFernet`` encrypts with its first key)."""
        return MultiFernet([Fernet(new), Fernet(old)]).rotate(token)


def new_key() -> bytes:
    return FernetCipher.new_key()


def encrypt_file(source: Path, target: Path, key: bytes, cipher: type = FernetCipher) -> str:
    """Write ``source`` encrypted to ``target``; return the plaintext's sha256."""
    data = source.read_bytes()
    target.write_bytes(cipher.encrypt(data, key))
    return hashlib.sha256(data).hexdigest()


def decrypt_bytes(token: bytes, *keys: bytes, cipher: type = FernetCipher) -> bytes:
    """Decrypt with the first key that authenticates the token (``InvalidToken`` if none)."""
    return cipher.decrypt(token, *keys)


def flipped(token: bytes, position: int) -> bytes:
    """The token with one bit of raw byte ``position`` flipped (re-encoded as base64)."""
    raw = bytearray(base64.urlsafe_b64decode(token))
    raw[position] ^= 0x01
    return base64.urlsafe_b64encode(bytes(raw))


@dataclass(frozen=True)
class TamperResult:
    """Single-bit flips at random positions of one encrypted file."""

    flips: int
    refused: int  # InvalidToken: the change was detected
    silently_decrypted: int  # decrypted to anything at all

    @property
    def detected_share(self) -> float:
        return self.refused / self.flips if self.flips else 0.0


def tamper_study(
    token: bytes, key: bytes, flips: int, seed: int, cipher: type = FernetCipher
) -> TamperResult:
    """Flip one bit at ``flips`` random positions (version byte, timestamp, IV, ciphertext,
    MAC alike), one at a time, and try to decrypt each."""
    size = len(base64.urlsafe_b64decode(token))
    rng = random.Random(seed)
    refused = decrypted = 0
    for position in rng.sample(range(size), min(flips, size)):
        try:
            cipher.decrypt(flipped(token, position), key)
            decrypted += 1
        except InvalidToken:
            refused += 1
    return TamperResult(refused + decrypted, refused, decrypted)


@dataclass(frozen=True)
class RotationResult:
    files: int
    plaintext_equal: int  # files whose plaintext sha256 is unchanged after rotation
    old_key_refused: int  # rotated files the retired key can no longer read
    new_key_reads: int


def rotate_files(
    paths: list[Path], old: bytes, new: bytes, cipher: type = FernetCipher
) -> RotationResult:
    """Re-encrypt every file under ``new`` (decrypt with the old key, encrypt with the new),
    written atomically; then check each with both keys."""
    before = {p: hashlib.sha256(cipher.decrypt(p.read_bytes(), old)).hexdigest() for p in paths}
    for path in paths:
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_bytes(cipher.rotate(path.read_bytes(), old, new))
        tmp.replace(path)
    equal = refused = reads = 0
    for path in paths:
        token = path.read_bytes()
        plain = cipher.decrypt(token, new)
        reads += 1
        equal += hashlib.sha256(plain).hexdigest() == before[path]
        try:
            cipher.decrypt(token, old)
        except InvalidToken:
            refused += 1
    return RotationResult(len(paths), equal, refused, reads)
