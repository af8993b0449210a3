"""The crawler's small pure parts: keyword matching, srcset, X-Robots-Tag, validation."""

from __future__ import annotations

import io
import ipaddress

import pytest
from PIL import Image

from crawler import keywords
from crawler.addresses import AddressPolicy, literal_address
from crawler.middlewares import XRobotsTagMiddleware, host_allowed
from crawler.near_duplicates import PhashIndex
from crawler.spiders.site import best_from_srcset
from crawler.validate import Limits, Rejected, hamming, inspect_image
from tests.site_fixture import encode, jpeg, photo


def test_keywords_match_words_phrases_and_plurals() -> None:
    matches, relevance = keywords.match(
        ["cat", "space rocket"],
        [("alt", "Two CATS asleep"), ("page-title", "A space-rocket launch"), ("title", "catalog")],
    )
    assert [(m["keyword"], m["where"]) for m in matches] == [
        ("cat", "alt"),
        ("space rocket", "page-title"),
    ]
    assert relevance == pytest.approx((1.0 + 1 / 3) / 2, abs=1e-3)
    assert keywords.match(["cat"], [("alt", "concatenate")]) == ([], 0.0)
    assert keywords.filename_text("http://x/img/Grey-cat_01.JPG?x=1") == "grey cat 01"


def test_srcset_picks_the_largest_candidate() -> None:
    assert best_from_srcset("a.jpg 100w, b.jpg 800w, c.jpg 400w") == "b.jpg"
    assert best_from_srcset("a.jpg, b.jpg 2x") == "b.jpg"
    assert best_from_srcset("") is None


def test_x_robots_tag_applies_to_us_or_everyone() -> None:
    mw = XRobotsTagMiddleware("dreamcrawl/0.1 (+https://example.org)")
    assert mw.refusing_directives([b"noindex, nofollow"]) == {"noindex"}
    assert mw.refusing_directives([b"googlebot: noindex"]) == set()
    assert mw.refusing_directives([b"dreamcrawl: noimageai"]) == {"noimageai"}
    assert mw.refusing_directives([b"unavailable_after: 2030-01-01", b"all"]) == set()


def test_domains_include_subdomains_only() -> None:
    assert host_allowed("img.example.org", ["example.org"])
    assert not host_allowed("badexample.org", ["example.org"])
    assert not host_allowed(None, ["example.org"])


def test_validation_limits() -> None:
    data = jpeg("chelsea", 200)
    facts = inspect_image(data, Limits())
    assert (facts.width, facts.height, facts.format, facts.bytes) == (200, 133, "JPEG", len(data))
    with pytest.raises(Rejected) as small:
        inspect_image(data, Limits(min_width=300))
    assert small.value.reason == "too-small"
    with pytest.raises(Rejected) as bomb:
        inspect_image(data, Limits(max_pixels=10_000))
    assert bomb.value.reason == "bomb"
    with pytest.raises(Rejected) as large:
        inspect_image(data, Limits(max_bytes=1000))
    assert large.value.reason == "too-large"
    with pytest.raises(Rejected) as fmt:
        inspect_image(encode(photo("rocket", 100), "BMP"), Limits(formats=frozenset({"JPEG"})))
    assert fmt.value.reason == "unsupported-format"


def test_phash_survives_reencoding_and_tells_photos_apart() -> None:
    a = inspect_image(jpeg("chelsea", 240), Limits()).phash
    b = inspect_image(encode(photo("chelsea", 200), quality=50), Limits()).phash
    c = inspect_image(jpeg("rocket", 240), Limits()).phash
    assert hamming(a, b) <= 6 < hamming(a, c)
    index = PhashIndex()
    index.add(7, a)
    index.add(8, c)
    far = inspect_image(jpeg("coffee", 240), Limits()).phash
    assert index.nearest(b, 6) == 7 and index.nearest(far, 6) is None


def test_truncated_png_is_rejected() -> None:
    buf = io.BytesIO()
    Image.new("RGB", (300, 300), "red").save(buf, "PNG")
    with pytest.raises(Rejected) as truncated:
        inspect_image(buf.getvalue()[:-200], Limits())
    assert truncated.value.reason == "truncated"


def test_truncated_jpeg_is_rejected_though_decoded_at_reduced_scale() -> None:
    # The pHash only needs 32x32 pixels, so a JPEG is decoded at 1/8 scale (draft); the
    # entropy-coded data is still read to its end, which is what catches truncation.
    whole = encode(photo("astronaut", 1024), quality=92)
    assert inspect_image(whole, Limits()).width == 1024
    for cut in (0.3, 0.6, 0.95):
        with pytest.raises(Rejected) as truncated:
            inspect_image(whole[: int(len(whole) * cut)], Limits())
        assert truncated.value.reason == "truncated"


@pytest.mark.parametrize(
    "host",
    [
        "100.64.0.1",  # carrier-grade NAT (shared address space)
        "100.127.255.254",
        "2002:7f00:1::1",  # 6to4 (embeds 127.0.0.1)
        "2002:c0a8:101::1",  # 6to4 of 192.168.1.1
        "::ffff:127.0.0.1",
        "192.0.2.1",  # documentation
        "198.18.0.1",  # benchmarking
        "127.0.0.1",
        "10.1.2.3",
    ],
)
def test_non_public_addresses_are_refused(host: str) -> None:
    refusal = AddressPolicy().refusal(host, [literal_address(host)])
    assert refusal is not None and refusal[0] == "private-address", (host, refusal)


def test_public_addresses_pass_and_a_host_without_address_fails_closed() -> None:
    for host in ("93.184.216.34", "[2606:2800:220:1:248:1893:25c8:1946]"):
        assert AddressPolicy().refusal(host, [literal_address(host)]) is None, host
    reason, detail = AddressPolicy().refusal("no-such-host.invalid", [])
    assert reason == "connection" and "cannot resolve" in detail


def test_one_refused_address_refuses_the_host_and_allowed_networks_are_exact() -> None:
    public, private = literal_address("93.184.216.34"), literal_address("10.1.2.3")
    assert AddressPolicy().refusal("mixed.example", [public, private])[0] == "private-address"
    intranet = AddressPolicy(allowed_networks=(ipaddress.ip_network("10.1.0.0/16"),))
    assert intranet.refusal("wiki.intranet", [private, public]) is None
    assert intranet.refusal("10.2.0.1", [literal_address("10.2.0.1")]) is not None
    assert intranet.allows(literal_address("::ffff:10.1.9.9"))
    assert AddressPolicy(allow_private=True).refusal("x", [literal_address("127.0.0.1")]) is None


def test_a_trailing_dot_is_the_same_host() -> None:
    assert host_allowed("example.org.", ["example.org"])
    assert host_allowed("img.example.org", ["example.org."])
    assert host_allowed("example.org.", ["example.org."])
