"""The ceiling: a bare Flask endpoint returning a short string, nothing else.

Served by gunicorn with the same settings as the app, it shows how many requests per
second any Flask endpoint can reach on this machine.
"""

from flask import Flask

app = Flask(__name__)


@app.get("/")
def index() -> str:
    return "ok"
