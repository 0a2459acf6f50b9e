"""The bare-Flask limit: one view returning a fixed small HTML page.

`make bench` serves it with the same gunicorn settings as the shop; what it
sustains is the most any Flask view can, so each shop page is reported as a
fraction of it.
"""

from flask import Flask

PAGE = (
    "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
    "<title>Bare Flask</title></head><body><p>A fixed page.</p></body></html>"
)

app = Flask(__name__)


@app.get("/")
def page():
    return PAGE
