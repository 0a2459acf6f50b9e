"""Product pictures: decoded and drawn again by Pillow, never stored as sent."""

import struct
import zlib
from io import BytesIO
from pathlib import Path

import pytest
from PIL import Image
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.test import encode_multipart

from models import Product, db


def picture_bytes(kind: str = "PNG", size=(800, 800), mode="RGB") -> bytes:
    out = BytesIO()
    Image.new(mode, size, "orange").save(out, kind)
    return out.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims `width` x `height` pixels: a bomb."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def upload(client, data: bytes, filename="bowl.png", **fields):
    form = {
        "name": "Singing Bowl",
        "description": "",
        "price": "1250",
        "stock": "8",
        "visible": "y",
        "picture": (BytesIO(data), filename),
    }
    return client.post("/admin/products/new", data=form | fields)


def bowl(app) -> Product | None:
    with app.app_context():
        return db.session.scalar(
            db.select(Product).where(Product.name == "Singing Bowl")
        )


@pytest.mark.parametrize("kind", ["PNG", "JPEG", "WEBP"])
def test_a_picture_is_redrawn_in_the_catalogs_frame_and_served(
    back_office, app, client, kind
):
    sent = picture_bytes(kind, size=(1200, 400))
    assert upload(client, sent).status_code == 303

    product = bowl(app)
    stored = Path(app.config["PICTURE_FOLDER"]) / product.picture
    assert product.picture.endswith(".webp") and len(product.picture) == 37
    assert stored.read_bytes() != sent
    with Image.open(stored) as image:
        assert (image.format, image.size) == ("WEBP", (400, 300))
    assert f'src="/pictures/{product.picture}"' in client.get("/").text
    with client.get(f"/pictures/{product.picture}") as served:
        assert served.status_code == 200
        assert served.data == stored.read_bytes()
        assert served.mimetype == "image/webp"


@pytest.mark.parametrize(
    ("data", "filename"),
    [
        (b"<?php echo 'hi'; ?>", "shell.png"),
        (b"GIF89a" + b"\x00" * 100, "old.gif"),
        (picture_bytes("GIF"), "real.gif"),
        (picture_bytes("PNG")[:60], "cut.png"),
        (b"", "empty.png"),
    ],
)
def test_a_file_that_is_not_a_png_jpeg_or_webp_is_refused(
    back_office, app, client, data, filename
):
    response = upload(client, data, filename)
    assert response.status_code == 400
    assert "not a PNG, JPEG or WebP picture" in response.text
    assert bowl(app) is None


def test_a_decompression_bomb_is_refused_without_decoding_it(back_office, app, client):
    # 200 megapixels claimed: Pillow would refuse; 60 it would only warn about.
    for width, height in [(20_000, 10_000), (10_000, 6_000)]:
        response = upload(client, png_claiming(width, height))
        assert response.status_code == 400
        assert "too many pixels" in response.text
    assert bowl(app) is None


def test_a_picture_over_2_mb_is_refused(back_office, app, client):
    huge = picture_bytes("PNG", size=(200, 200)) + b"\x00" * (2 * 1024 * 1024)
    # Encoded here, in memory: the test client spools a body this large to a
    # temporary file that it never closes.
    form = {"name": "Singing Bowl", "price": "1250", "stock": "8"}
    boundary, body = encode_multipart(
        MultiDict(form | {"picture": FileStorage(BytesIO(huge), "bowl.png")})
    )
    response = client.post(
        "/admin/products/new",
        data=body,
        content_type=f"multipart/form-data; boundary={boundary}",
    )
    assert response.status_code == 400
    assert "2 MB or less" in response.text
    assert bowl(app) is None


def test_a_much_larger_request_is_refused_before_it_is_read(back_office, client):
    # A raw body (the test client would spool a multipart form to a file).
    response = client.post(
        "/admin/products/new",
        data=b"\x00" * (5 * 1024 * 1024),
        content_type="multipart/form-data; boundary=x",
    )
    assert response.status_code == 413


def test_a_new_picture_replaces_the_old_file(back_office, app, client):
    upload(client, picture_bytes("PNG"))
    product = bowl(app)
    folder = Path(app.config["PICTURE_FOLDER"])
    page = client.get(f"/admin/products/{product.id}").text
    assert f'src="/pictures/{product.picture}"' in page

    response = client.post(
        f"/admin/products/{product.id}",
        data={
            "name": "Singing Bowl",
            "price": "1250",
            "stock": "8",
            "stock_shown": "8",
            "visible": "y",
            "picture": (BytesIO(picture_bytes("JPEG")), "new.jpg"),
        },
    )

    assert response.status_code == 303
    replaced = bowl(app)
    assert replaced.picture != product.picture
    assert [path.name for path in folder.iterdir()] == [replaced.picture]


def test_pictures_outside_the_folder_cannot_be_fetched(client):
    assert client.get("/pictures/..%2Fshop.db").status_code == 404
    assert client.get("/pictures/nothing.webp").status_code == 404
    assert client.get("/pictures/a%00b.webp").status_code in {400, 404}
