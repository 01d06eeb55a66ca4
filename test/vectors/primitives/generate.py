#!/usr/bin/env python3
"""Writes the primitive known-answer vectors as JSON, after checking every one of them against an
independent implementation (pyca/cryptography on OpenSSL, and Python's hashlib/hmac).

The expected values are transcribed from the published documents named in each file's
"source"; the only computed values are marked as such ("computed_with"). Run from anywhere:
    python3 test/vectors/primitives/generate.py
"""
import hashlib
import hmac
import json
import os

from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

HERE = os.path.dirname(os.path.abspath(__file__))
h = bytes.fromhex


def write(name, doc):
    with open(os.path.join(HERE, name), "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")


# ---- SHA-256 (FIPS 180-2 appendix B / NIST CSRC examples) ----
sha = [
    {"name": "empty", "message_hex": "", "digest": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
    {"name": "abc", "message_hex": b"abc".hex(), "digest": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
    {
        "name": "two-block 448-bit message",
        "message_hex": b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".hex(),
        "digest": "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
    },
    {
        "name": "one million 'a'",
        "message_repeat": {"byte_hex": "61", "count": 1000000},
        "digest": "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0",
    },
]
for v in sha:
    msg = h(v["message_hex"]) if "message_hex" in v else h(v["message_repeat"]["byte_hex"]) * v["message_repeat"]["count"]
    assert hashlib.sha256(msg).hexdigest() == v["digest"], v["name"]
write("sha256.json", {"source": "FIPS 180-2 Appendix B (SHA-256 examples) and the NIST CSRC example values", "vectors": sha})

# ---- HMAC-SHA-256 (RFC 4231 section 4, test cases 1-7) ----
aa131 = "aa" * 131
hm = [
    {"case": 1, "key_hex": "0b" * 20, "data_hex": b"Hi There".hex(), "mac": "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
    {"case": 2, "key_hex": b"Jefe".hex(), "data_hex": b"what do ya want for nothing?".hex(), "mac": "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
    {"case": 3, "key_hex": "aa" * 20, "data_hex": "dd" * 50, "mac": "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"},
    {"case": 4, "key_hex": "0102030405060708090a0b0c0d0e0f10111213141516171819", "data_hex": "cd" * 50, "mac": "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"},
    {"case": 5, "key_hex": "0c" * 20, "data_hex": b"Test With Truncation".hex(), "mac": "a3b6167473100ee06e0c796c2955552b", "truncate_to": 16},
    {"case": 6, "key_hex": aa131, "data_hex": b"Test Using Larger Than Block-Size Key - Hash Key First".hex(), "mac": "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
    {
        "case": 7,
        "key_hex": aa131,
        "data_hex": b"This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm.".hex(),
        "mac": "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
    },
]
for v in hm:
    got = hmac.new(h(v["key_hex"]), h(v["data_hex"]), hashlib.sha256).hexdigest()
    assert got[: len(v["mac"])] == v["mac"], v["case"]
write("hmac-sha256.json", {"source": "RFC 4231 section 4.2-4.8 (HMAC-SHA-256 results; case 5 is truncated to 128 bits in the RFC)", "vectors": hm})

# ---- HKDF-SHA-256 (RFC 5869 appendix A.1-A.3) ----
hk = [
    {"case": 1, "ikm_hex": "0b" * 22, "salt_hex": "000102030405060708090a0b0c", "info_hex": "f0f1f2f3f4f5f6f7f8f9", "length": 42,
     "okm": "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"},
    {"case": 2, "ikm_hex": bytes(range(0x00, 0x50)).hex(), "salt_hex": bytes(range(0x60, 0xb0)).hex(), "info_hex": bytes(range(0xb0, 0x100)).hex(), "length": 82,
     "okm": "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71cc30c58179ec3e87c14c01d5c1f3434f1d87"},
    {"case": 3, "ikm_hex": "0b" * 22, "salt_hex": "", "info_hex": "", "length": 42,
     "okm": "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"},
]
for v in hk:
    got = HKDF(algorithm=hashes.SHA256(), length=v["length"], salt=h(v["salt_hex"]) or None, info=h(v["info_hex"])).derive(h(v["ikm_hex"]))
    assert got.hex() == v["okm"], v["case"]
write("hkdf-sha256.json", {"source": "RFC 5869 appendix A.1, A.2, A.3 (SHA-256 cases; an empty salt means HashLen zero bytes)", "vectors": hk})

# ---- PBKDF2-HMAC-SHA-512 ----
pb = [
    {"password_hex": b"password".hex(), "salt_hex": b"salt".hex(), "iterations": 1, "length": 64,
     "dk": "867f70cf1ade02cff3752599a3a53dc4af34c7a669815ae5d513554e1c8cf252c02d470a285a0501bad999bfe943c08f050235d7d68b1da55e63f73b60a57fce"},
    {"password_hex": b"password".hex(), "salt_hex": b"salt".hex(), "iterations": 2, "length": 64,
     "dk": "e1d9c16aa681708a45f5c7c4e215ceb66e011a2e9f0040713f18aefdb866d53cf76cab2868a39b9f7840edce4fef5a82be67335c77a6068e04112754f27ccf4e"},
    {"password_hex": b"passwordPASSWORDpassword".hex(), "salt_hex": b"saltSALTsaltSALTsaltSALTsaltSALTsalt".hex(), "iterations": 4096, "length": 64,
     "dk": "8c0511f4c6e597c6ac6315d8f0362e225f3c501495ba23b868c005174dc4ee71115b59f9e60cd9532fa33e0f75aefe30225c583a186cd82bd4daea9724a3d3b8"},
]
for v in pb:
    got = hashlib.pbkdf2_hmac("sha512", h(v["password_hex"]), h(v["salt_hex"]), v["iterations"], v["length"])
    assert got.hex() == v["dk"], v
write("pbkdf2-sha512.json", {"source": "PBKDF2-HMAC-SHA512 answers for the RFC 6070 inputs as published in draft-josefsson-pbkdf2-test-vectors (RFC 6070 itself lists SHA-1 only), re-checked with Python hashlib.pbkdf2_hmac", "vectors": pb})

# ---- AES-256 (NIST SP 800-38A F.2.5/F.2.6 CBC, F.5.5/F.5.6 CTR) ----
key = "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4"
pt = "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e5130c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710"
cbc_ct = "f58c4c04d6e5f1ba779eabfb5f7bfbd69cfc4e967edb808d679f777bc6702c7d39f23369a9d9bacfa530e26304231461b2eb05e2c39be9fcda6c19078c6a9d1b"
ctr_ct = "601ec313775789a5b7a7f504bbf3d228f443e3ca4d62b59aca84e990cacaf5c52b0930daa23de94ce87017ba2d84988ddfc9c58db67aada613c2dd08457941a6"
cbc_iv = "000102030405060708090a0b0c0d0e0f"
ctr_iv = "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff"
enc = Cipher(algorithms.AES(h(key)), modes.CBC(h(cbc_iv))).encryptor()
assert (enc.update(h(pt)) + enc.finalize()).hex() == cbc_ct
enc = Cipher(algorithms.AES(h(key)), modes.CTR(h(ctr_iv))).encryptor()
assert (enc.update(h(pt)) + enc.finalize()).hex() == ctr_ct
# The NIST CBC vectors have no padding; with PKCS#7 a 64-byte plaintext gains one full block of 0x10.
padder = padding.PKCS7(128).padder()
enc = Cipher(algorithms.AES(h(key)), modes.CBC(h(cbc_iv))).encryptor()
cbc_padded = (enc.update(padder.update(h(pt)) + padder.finalize()) + enc.finalize()).hex()
assert cbc_padded.startswith(cbc_ct)
# A counter block that wraps: the 128-bit counter must carry across all 16 bytes.
wrap_iv = "ff" * 15 + "fe"
enc = Cipher(algorithms.AES(h(key)), modes.CTR(h(wrap_iv))).encryptor()
ctr_wrap = (enc.update(h(pt)) + enc.finalize()).hex()
write("aes256.json", {
    "source": "NIST SP 800-38A appendix F.2.5/F.2.6 (CBC-AES256) and F.5.5/F.5.6 (CTR-AES256). Values marked computed_with were produced by pyca/cryptography (OpenSSL), not by Keyroom.",
    "key": key, "plaintext": pt,
    "cbc": {"name": "F.2.5/F.2.6 CBC-AES256", "iv": cbc_iv, "ciphertext_nopad": cbc_ct,
            "ciphertext_pkcs7": cbc_padded, "computed_with": "ciphertext_pkcs7: pyca/cryptography 48 (OpenSSL) with PKCS7 padding"},
    "ctr": {"name": "F.5.5/F.5.6 CTR-AES256", "iv": ctr_iv, "ciphertext": ctr_ct},
    "ctr_wrap": {"iv": wrap_iv, "ciphertext": ctr_wrap, "computed_with": "pyca/cryptography 48 (OpenSSL), 128-bit counter wrapping past 2^128-1"},
})

# ---- X25519 (RFC 7748 sections 5.2 and 6.1) ----
def x25519(k, u):
    return X25519PrivateKey.from_private_bytes(h(k)).exchange(X25519PublicKey.from_public_bytes(h(u))).hex()

xv = [
    {"scalar": "a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4", "u": "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
     "output": "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552"},
    {"scalar": "4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d", "u": "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
     "output": "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957"},
]
for v in xv:
    assert x25519(v["scalar"], v["u"]) == v["output"]
k = u = "09" + "00" * 31
iterated = {}
for i in range(1, 1001):
    k, u = x25519(k, u), k
    if i in (1, 1000):
        iterated[str(i)] = k
assert iterated["1"] == "422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079"
assert iterated["1000"] == "684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51"
dh = {
    "alice_private": "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
    "alice_public": "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a",
    "bob_private": "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb",
    "bob_public": "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f",
    "shared": "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742",
}
for who in ("alice", "bob"):
    pub = X25519PrivateKey.from_private_bytes(h(dh[who + "_private"])).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()
    assert pub == dh[who + "_public"]
assert x25519(dh["alice_private"], dh["bob_public"]) == dh["shared"]
# Points of order 1, 2, 4 and 8 (and their non-reduced aliases u+p); X25519 with any scalar gives zero.
low_order = [
    "00" * 32,
    "01" + "00" * 31,
    "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
    "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
]
for u in low_order:
    try:
        x25519(dh["alice_private"], u)
        raise AssertionError("low-order point accepted: " + u)
    except ValueError:
        pass
write("x25519.json", {
    "source": "RFC 7748 section 5.2 (two scalar multiplications, iterated vector after 1 and 1000 steps) and section 6.1 (Diffie-Hellman); low_order lists u-coordinates of small-order points (OpenSSL refuses each, as checked by generate.py)",
    "vectors": xv, "iterated": iterated, "dh": dh, "low_order": low_order,
})

# ---- Ed25519 (RFC 8032 section 7.1) ----
ed = [
    {"name": "TEST 1", "seed": "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60", "public": "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
     "message": "", "signature": "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"},
    {"name": "TEST 2", "seed": "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb", "public": "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
     "message": "72", "signature": "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"},
    {"name": "TEST 3", "seed": "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7", "public": "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
     "message": "af82", "signature": "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a"},
    {"name": "TEST SHA(abc)", "seed": "833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42", "public": "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf",
     "message": hashlib.sha512(b"abc").hexdigest(), "signature": "dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b58909351fc9ac90b3ecfdfbc7c66431e0303dca179c138ac17ad9bef1177331a704"},
]
for v in ed:
    sk = Ed25519PrivateKey.from_private_bytes(h(v["seed"]))
    assert sk.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex() == v["public"], v["name"]
    assert sk.sign(h(v["message"])).hex() == v["signature"], v["name"]
write("ed25519.json", {"source": "RFC 8032 section 7.1: TEST 1, TEST 2, TEST 3 and TEST SHA(abc) (message = SHA-512 of 'abc')", "vectors": ed})
print("all vectors verified and written")
