"""A small shop: products in SQLite, token logins, a cart and a checkout that never oversells."""

from __future__ import annotations

import hashlib
import os
import secrets
import sqlite3
import threading
from pathlib import Path

from fastapi import Depends, FastAPI, Header, HTTPException
from pydantic import BaseModel

DB_PATH = Path(os.environ.get("SHOP_DB", "shop.db"))
_lock = threading.Lock()
_tokens: dict[str, str] = {}


def _connect() -> sqlite3.Connection:
    connection = sqlite3.connect(DB_PATH, check_same_thread=False, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    return connection


db = _connect()
db.executescript("""
CREATE TABLE IF NOT EXISTS products (id INTEGER PRIMARY KEY, name TEXT NOT NULL, price REAL NOT NULL,
                                     stock INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS users (name TEXT PRIMARY KEY, password_hash TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS carts (user TEXT NOT NULL, product INTEGER NOT NULL, quantity INTEGER NOT NULL);
""")
if db.execute("SELECT COUNT(*) FROM products").fetchone()[0] == 0:
    db.executemany("INSERT INTO products (name, price, stock) VALUES (?, ?, ?)",
                   [(f"product {i}", 5.0 + i, 1_000_000) for i in range(1, 51)])


def _hash(password: str, salt: str) -> str:
    return hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), 20_000).hex()  # a slow login, as in life


class Credentials(BaseModel):
    name: str
    password: str


class CartLine(BaseModel):
    product: int
    quantity: int = 1


app = FastAPI(title="shop")


def user_of(authorization: str = Header("")) -> str:
    user = _tokens.get(authorization.removeprefix("Bearer "))
    if user is None:
        raise HTTPException(401, "log in first")
    return user


@app.post("/api/login")
def login(credentials: Credentials) -> dict[str, str]:
    row = db.execute("SELECT password_hash FROM users WHERE name = ?", (credentials.name,)).fetchone()
    digest = _hash(credentials.password, credentials.name)
    if row is None:
        db.execute("INSERT OR IGNORE INTO users VALUES (?, ?)", (credentials.name, digest))
    elif row[0] != digest:
        raise HTTPException(401, "wrong password")
    token = secrets.token_hex(16)
    _tokens[token] = credentials.name
    return {"token": token}


@app.get("/api/products")
def products() -> list[dict[str, object]]:
    rows = db.execute("SELECT id, name, price, stock FROM products ORDER BY id").fetchall()
    return [{"id": r[0], "name": r[1], "price": r[2], "stock": r[3]} for r in rows]


@app.get("/api/products/{product_id}")
def product(product_id: int) -> dict[str, object]:
    row = db.execute("SELECT id, name, price, stock FROM products WHERE id = ?", (product_id,)).fetchone()
    if row is None:
        raise HTTPException(404, "no such product")
    return {"id": row[0], "name": row[1], "price": row[2], "stock": row[3]}


@app.post("/api/cart")
def add_to_cart(line: CartLine, user: str = Depends(user_of)) -> dict[str, int]:
    if line.quantity < 1:
        raise HTTPException(422, "quantity must be at least 1")
    db.execute("INSERT INTO carts VALUES (?, ?, ?)", (user, line.product, line.quantity))
    return {"lines": db.execute("SELECT COUNT(*) FROM carts WHERE user = ?", (user,)).fetchone()[0]}


@app.post("/api/checkout")
def checkout(user: str = Depends(user_of)) -> dict[str, object]:
    with _lock:  # one checkout at a time: stock never goes below zero
        lines = db.execute("SELECT product, quantity FROM carts WHERE user = ?", (user,)).fetchall()
        if not lines:
            raise HTTPException(409, "the cart is empty")
        for product_id, quantity in lines:
            done = db.execute("UPDATE products SET stock = stock - ? WHERE id = ? AND stock >= ?",
                              (quantity, product_id, quantity))
            if done.rowcount == 0:
                raise HTTPException(409, f"product {product_id} is out of stock")
        db.execute("DELETE FROM carts WHERE user = ?", (user,))
    return {"ordered": len(lines)}
