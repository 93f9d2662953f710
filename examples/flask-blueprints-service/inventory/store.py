"""Stock storage: PostgreSQL when DATABASE_URL is set, an in-memory table otherwise."""

MEMORY = {"apples": 3, "pears": 0}


def connect(url: str):
    import psycopg2  # only when a database is configured

    return psycopg2.connect(url)


def stock_of(url: str, item: str) -> int:
    if not url:
        return MEMORY.get(item, 0)
    with connect(url) as conn:
        cur = conn.cursor()
        cur.execute("SELECT count FROM stock WHERE item = %s", (item,))
        row = cur.fetchone()
        return int(row[0]) if row else 0
