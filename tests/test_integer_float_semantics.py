"""Integers and double precision as PostgreSQL has them, on both engines.

smallint, integer and bigint arithmetic is computed at the operands' width and
raises 22003 when the result leaves it (SQLite would widen to 64 bits, or turn
a 64-bit overflow into a REAL); sum() of bigint is numeric and never overflows;
a value stored into an integer column is range checked and rounded as
PostgreSQL's assignment casts round (numeric half away from zero, float half
to even), and text must spell an integer.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from value_checks import one, same

import loomdb


@pytest.fixture
def db(fresh_db):
    fresh_db.execute("CREATE TABLE t (id INT PRIMARY KEY, i INT, s SMALLINT, b BIGINT, f DOUBLE PRECISION)")
    fresh_db.executemany(
        "INSERT INTO t VALUES (%s, %s, %s, %s, %s)",
        [
            (1, 2147483647, 32767, 9223372036854775807, 1e308),
            (2, -2147483648, -32768, -9223372036854775807, 0.5),
            (3, None, None, None, None),
        ],
    )
    return fresh_db


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("SELECT 2147483647 * 2", "integer out of range"),
        ("SELECT 2147483647::int + 1", "integer out of range"),
        ("SELECT 32767::smallint + 1::smallint", "smallint out of range"),
        ("SELECT 9223372036854775807 + 1", "bigint out of range"),
        ("SELECT -(-9223372036854775807 - 1)", "bigint out of range"),
        ("SELECT (2147483647 + 1) - 1", "integer out of range"),
        ("SELECT i + 1 FROM t WHERE id = 1", "integer out of range"),
        ("SELECT i - 1 FROM t WHERE id = 2", "integer out of range"),
        ("SELECT -i FROM t WHERE id = 2", "integer out of range"),
        ("SELECT abs(i) FROM t WHERE id = 2", "integer out of range"),
        ("SELECT i / -1 FROM t WHERE id = 2", "integer out of range"),
        ("SELECT s + s FROM t WHERE id = 1", "smallint out of range"),
        ("SELECT -s FROM t WHERE id = 2", "smallint out of range"),
        ("SELECT b * 2 FROM t WHERE id = 1", "bigint out of range"),
        ("SELECT b - 2 FROM t WHERE id = 2", "bigint out of range"),
        ("SELECT (i + 0) * (i + 0) FROM t WHERE id = 1", "integer out of range"),
        ("SELECT count(*) FROM t WHERE i + 1 > 0", "integer out of range"),
    ],
)
def test_integer_overflow_raises_22003(db, sql, message):
    with pytest.raises(loomdb.DataError, match=message) as info:
        db.execute(sql).fetchall()
    assert info.value.sqlstate == "22003"


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT s + 1 FROM t WHERE id = 1", 32768),  # smallint + integer is an integer
        ("SELECT i + 1::bigint FROM t WHERE id = 1", 2147483648),
        ("SELECT 3000000000 + 1", 3000000001),  # a literal past 32 bits is a bigint
        ("SELECT b + 0 FROM t WHERE id = 2", -9223372036854775807),
        ("SELECT abs(b) FROM t WHERE id = 2", 9223372036854775807),
        ("SELECT i + 1 FROM t WHERE id = 3", None),
        ("SELECT -(-9223372036854775807)", 9223372036854775807),
        ("SELECT (i - 1) / 2 FROM t WHERE id = 1", 1073741823),
    ],
)
def test_integer_arithmetic_within_range(db, sql, expected):
    assert one(db, sql) == expected


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT sum(b) FROM t", Decimal("0")),
        ("SELECT sum(b) FROM t WHERE id = 1", Decimal("9223372036854775807")),
        ("SELECT sum(9223372036854775807) FROM t", Decimal("27670116110564327421")),
        ("SELECT sum(b) FROM t WHERE id = 3", None),
        ("SELECT sum(b + 0) FROM t WHERE id < 3", Decimal("0")),
        ("SELECT sum(i) FROM t", -1),
        ("SELECT sum(s) FROM t", -1),
    ],
)
def test_sum_of_bigint_is_numeric(db, sql, expected):
    got = one(db, sql)
    if expected is None:
        assert got is None
    else:
        same(got, expected)


def test_sum_of_bigint_groups_and_compares(db):
    rows = db.execute("SELECT id, sum(b) FROM t WHERE id < 3 GROUP BY id ORDER BY sum(b) DESC").fetchall()
    assert [tuple(r) for r in rows] == [
        (1, Decimal("9223372036854775807")),
        (2, Decimal("-9223372036854775807")),
    ]
    assert one(db, "SELECT count(*) FROM (SELECT id FROM t GROUP BY id HAVING sum(b) > 0) AS x") == 1


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2.5", 3),  # a number literal is numeric: half away from zero
        ("-2.5", -3),
        ("1e3", 1000),
        ("'12'", 12),
        ("' 7 '", 7),
        ("2.5::float", 2),  # a float rounds half to even
        ("3.5::float", 4),
    ],
)
def test_insert_into_integer_rounds_as_postgres(db, value, expected):
    row = db.execute(f"INSERT INTO t (id, i) VALUES (10, {value}) RETURNING i").fetchone()
    assert row[0] == expected
    assert one(db, f"UPDATE t SET i = {value} WHERE id = 10 RETURNING i") == expected


@pytest.mark.parametrize(
    ("param", "expected"), [(2.5, 2), (3.5, 4), (Decimal("2.5"), 3), (Decimal("-2.5"), -3), ("12", 12)]
)
def test_integer_parameter_rounds_as_postgres(db, param, expected):
    assert one(db, "INSERT INTO t (id, i) VALUES (10, %s) RETURNING i", [param]) == expected


@pytest.mark.parametrize(
    ("column", "value", "sqlstate"),
    [
        ("i", "3000000000", "22003"),
        ("i", "'3000000000'", "22003"),
        ("s", "40000", "22003"),
        ("b", "9223372036854775808", "22003"),
        ("i", "'2.5'", "22P02"),
        ("i", "'abc'", "22P02"),
        ("i", "2147483647 + 1", "22003"),
        ("i", "'Infinity'::float", "22003"),
    ],
)
def test_insert_into_integer_refuses_as_postgres(db, column, value, sqlstate):
    with pytest.raises(loomdb.DataError) as info:
        db.execute(f"INSERT INTO t (id, {column}) VALUES (10, {value})")
    assert info.value.sqlstate == sqlstate
    with pytest.raises(loomdb.DataError) as info:
        db.execute(f"UPDATE t SET {column} = {value} WHERE id = 3")
    assert info.value.sqlstate == sqlstate
    assert one(db, "SELECT count(*) FROM t") == 3


def test_integer_parameter_out_of_range(db):
    with pytest.raises(loomdb.DataError) as info:
        db.execute("INSERT INTO t (id, s) VALUES (10, %s)", [32768])
    assert info.value.sqlstate == "22003"
    with pytest.raises(loomdb.DataError) as info:
        db.executemany("INSERT INTO t (id, i) VALUES (%s, %s)", [(10, 1), (11, 2**31)])
    assert info.value.sqlstate == "22003"


# -- double precision ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT f::text FROM t WHERE id = 1", "1e+308"),
        ("SELECT f::text FROM t WHERE id = 2", "0.5"),
        ("SELECT (f - f)::text FROM t WHERE id = 2", "0"),
        ("SELECT f::text FROM t WHERE id = 3", None),
        ("SELECT 1e15::float::text", "1e+15"),
        ("SELECT 1e14::float::text", "100000000000000"),
        ("SELECT 0.00001::float::text", "1e-05"),
        ("SELECT 0.7::real::text", "0.7"),
        ("SELECT 1000000::real::text", "1e+06"),
        ("SELECT round(-0.4::float)::text", "-0"),
        ("SELECT '-Infinity'::float::text", "-Infinity"),
        ("SELECT 1e300::text", "1" + "0" * 300),  # a number literal is numeric
        ("SELECT 0.10::text", "0.10"),
        ("SELECT (f > 1)::text FROM t WHERE id = 1", "true"),
        ("SELECT (f > 1)::text FROM t WHERE id = 2", "false"),
        ("SELECT (f > 1)::varchar(2) FROM t WHERE id = 2", "fa"),
    ],
)
def test_float_and_boolean_text_as_postgres(db, sql, expected):
    assert one(db, sql) == expected


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT round(2.5::float)", 2.0),
        ("SELECT round(3.5::float)", 4.0),
        ("SELECT round(-2.5::float)", -2.0),
        ("SELECT round(f) FROM t WHERE id = 2", 0.0),
        ("SELECT round(f + 1) FROM t WHERE id = 2", 2.0),
        ("SELECT round(f) FROM t WHERE id = 3", None),
    ],
)
def test_round_of_float_is_half_to_even(db, sql, expected):
    got = one(db, sql)
    assert got == expected and type(got) is type(expected)


@pytest.mark.parametrize(
    ("sql", "sqlstate", "message"),
    [
        ("SELECT sqrt(-1)", "2201F", "square root of a negative number"),
        ("SELECT sqrt(f - 1) FROM t WHERE id = 2", "2201F", "square root of a negative number"),
        ("SELECT ln(0)", "2201E", "logarithm of zero"),
        ("SELECT ln(f - f) FROM t WHERE id = 2", "2201E", "logarithm of zero"),
        ("SELECT log(-1)", "2201E", "logarithm of a negative number"),
        ("SELECT 1e308::float * 10", "22003", "overflow"),
        ("SELECT f * 10 FROM t WHERE id = 1", "22003", "overflow"),
        ("SELECT f + f FROM t WHERE id = 1", "22003", "overflow"),
        ("SELECT (f + 0) * (f + 0) FROM t WHERE id = 1", "22003", "overflow"),
        ("SELECT 1e-300::float * 1e-300::float", "22003", "underflow"),
        ("SELECT f / 0 FROM t WHERE id = 2", "22012", "division by zero"),
        ("SELECT round(f, 1) FROM t", "42883", "round"),
    ],
)
def test_float_errors_as_postgres(db, sql, sqlstate, message):
    with pytest.raises(loomdb.Error, match=message) as info:
        db.execute(sql).fetchall()
    assert info.value.sqlstate == sqlstate


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT sqrt(f), ln(f - f + 1) FROM t WHERE id = 3", (None, None)),
        ("SELECT sqrt(f) FROM t WHERE id = 2", (0.7071067811865476,)),
        ("SELECT f * 0, f / 2 FROM t WHERE id = 2", (0.0, 0.25)),
        ("SELECT 'Infinity'::float * 2", (float("inf"),)),
        ("SELECT f * 2 FROM t WHERE id = 3", (None,)),
    ],
)
def test_float_arithmetic_within_range(db, sql, expected):
    assert tuple(db.execute(sql).fetchone()) == expected


@pytest.mark.parametrize(
    "sql", ["SELECT 'NaN'::float", "SELECT 'NaN'::real", "SELECT 'Infinity'::float - 'Infinity'::float"]
)
def test_nan_is_right_on_postgres_and_refused_on_sqlite(db, engine, sql):
    if engine == "sqlite":
        with pytest.raises(loomdb.NotSupportedError, match="NaN"):
            db.execute(sql).fetchall()
    else:
        assert one(db, sql) != one(db, sql)  # NaN


def test_numeric_nan_is_right_on_postgres_and_refused_on_sqlite(db, engine):
    if engine == "sqlite":
        with pytest.raises(loomdb.NotSupportedError):
            one(db, "SELECT 'NaN'::numeric")
    else:
        assert one(db, "SELECT 'NaN'::numeric").is_nan()


def test_storing_nan_is_right_on_postgres_and_refused_on_sqlite(db, engine):
    if engine == "sqlite":
        for sql, params in [
            ("INSERT INTO t (id, f) VALUES (10, %s)", [float("nan")]),
            ("INSERT INTO t (id, f) VALUES (10, 'NaN')", None),
            ("UPDATE t SET f = %s WHERE id = 3", [float("nan")]),
        ]:
            with pytest.raises(loomdb.NotSupportedError, match="NaN"):
                db.execute(sql, params)
        assert one(db, "SELECT count(*) FROM t") == 3
    else:
        db.execute("INSERT INTO t (id, f) VALUES (10, %s)", [float("nan")])
        db.executemany("INSERT INTO t (id, f) VALUES (%s, %s)", [(11, float("nan")), (12, 1.5)])
        values = [r[0] for r in db.execute("SELECT f FROM t WHERE id >= 10 ORDER BY id").fetchall()]
        assert values[0] != values[0] and values[1] != values[1] and values[2] == 1.5


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT 'f=' || f FROM t WHERE id = 1", "f=1e+308"),
        ("SELECT (f - f) || '' FROM t WHERE id = 2", "0"),
        ("SELECT (f > 1) || '!' FROM t WHERE id = 2", "false!"),
        ("SELECT 'n' || 1.50", "n1.50"),
        ("SELECT 'f=' || f FROM t WHERE id = 3", None),
    ],
)
def test_concatenation_writes_floats_and_booleans_as_postgres(db, sql, expected):
    assert one(db, sql) == expected


def test_modulo_of_float_does_not_exist(db):
    with pytest.raises(loomdb.ProgrammingError) as info:
        db.execute("SELECT f % 2 FROM t").fetchall()
    assert info.value.sqlstate == "42883"


@pytest.mark.parametrize(
    ("sql", "sqlstate", "message"),
    [
        ("SELECT exp(1000::float)", "22003", "overflow"),
        ("SELECT exp(-1000::float)", "22003", "underflow"),
        ("SELECT power(10::float, 400)", "22003", "overflow"),
        ("SELECT f ^ 2 FROM t WHERE id = 1", "22003", "overflow"),
        ("SELECT power(-1::float, 0.5::float)", "2201F", "complex"),
        ("SELECT power(0::float, -1)", "2201F", "zero raised to a negative power"),
    ],
)
def test_exp_and_power_errors_as_postgres(db, sql, sqlstate, message):
    with pytest.raises(loomdb.DataError, match=message) as info:
        db.execute(sql).fetchall()
    assert info.value.sqlstate == sqlstate


def test_exp_and_power_within_range(db):
    assert tuple(db.execute("SELECT exp(f - f), power(f, 2), 2 ^ 10 FROM t WHERE id = 2").fetchone()) == (
        1.0,
        0.25,
        1024.0,
    )
    assert tuple(db.execute("SELECT exp(f), power(f, 2) FROM t WHERE id = 3").fetchone()) == (None, None)


def test_window_and_distinct_sum_of_bigint_are_exact(db):
    rows = db.execute("SELECT id, sum(9223372036854775807) OVER (ORDER BY id) FROM t ORDER BY id").fetchall()
    assert [r[1] for r in rows] == [Decimal(9223372036854775807 * k) for k in (1, 2, 3)]
    same(one(db, "SELECT sum(DISTINCT b) FROM t"), Decimal("0"))


@pytest.mark.parametrize(
    ("sql", "params", "expected"),
    [
        ("SELECT s + %s FROM t WHERE id = 1", [100000], 132767),  # the parameter binds as integer
        ("SELECT i + %s FROM t WHERE id = 1", [3000000000], 5147483647),  # ... as bigint
        ("SELECT i + %s FROM t WHERE id = 1", [1.5], 2147483648.5),  # ... as double precision
        ("SELECT -i + %s FROM t WHERE id = 1", [2], -2147483645),
        ("SELECT i + %s FROM t WHERE id = 3", [1], None),
    ],
)
def test_integer_arithmetic_with_parameters(db, sql, params, expected):
    assert one(db, sql, params) == expected


@pytest.mark.parametrize(
    ("sql", "params", "message"),
    [
        ("SELECT s + %s FROM t WHERE id = 1", [1], "smallint out of range"),
        ("SELECT i + %s FROM t WHERE id = 1", [1], "integer out of range"),
        ("SELECT b + %s FROM t WHERE id = 1", [1], "bigint out of range"),
        ("SELECT %s * %s", [70000, 70000], "integer out of range"),
        ("SELECT (i + 0) - %s FROM t WHERE id = 1", [-1], "integer out of range"),
    ],
)
def test_integer_overflow_with_parameters(db, sql, params, message):
    with pytest.raises(loomdb.DataError, match=message) as info:
        db.execute(sql, params).fetchall()
    assert info.value.sqlstate == "22003"


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT (2.5 + 0)::int", 3),  # numeric arithmetic: half away from zero
        ("SELECT (-0.5 * 5)::bigint", -3),
        ("SELECT (0.5::float * 5)::int", 2),  # double precision: half to even
        ("SELECT (f * 5)::int FROM t WHERE id = 2", 2),
    ],
)
def test_cast_to_integer_rounds_by_postgres_type(db, sql, expected):
    assert one(db, sql) == expected


def test_filtered_sum_of_bigint(db):
    same(one(db, "SELECT sum(b) FILTER (WHERE id = 1) FROM t"), Decimal("9223372036854775807"))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("i * 1.5", 23),  # 15 * 1.5 = 22.5 is numeric: half away from zero
        ("i * 1.5::float", 22),  # double precision: half to even
        ("(2.5)", 3),
        ("-(2.5)", -3),
        ("2.5 + 0", 3),
        ("(SELECT max(s) FROM t) - 32766", 1),
    ],
)
def test_computed_values_stored_into_integers_round_by_type(db, value, expected):
    db.execute("UPDATE t SET i = 15 WHERE id = 3")
    assert one(db, f"UPDATE t SET i = {value} WHERE id = 3 RETURNING i") == expected
    db.execute("UPDATE t SET i = 15 WHERE id = 3")
    assert (
        one(db, f"INSERT INTO t (id, i) VALUES (10, {value.replace('i *', '15 *')}) RETURNING i") == expected
    )


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT 1 << 31", -2147483648),  # an integer shift wraps in 32 bits
        ("SELECT 1 << 32", 1),  # the count is taken modulo 32
        ("SELECT 1::smallint << 15", -32768),
        ("SELECT 1::bigint << 63", -9223372036854775808),
        ("SELECT i << 1 FROM t WHERE id = 1", -2),
        ("SELECT i >> 33 FROM t WHERE id = 1", 1073741823),
        ("SELECT 5 # 3", 6),
        ("SELECT i # 1 FROM t WHERE id = 2", -2147483647),
    ],
)
def test_bit_operators_as_postgres(db, sql, expected):
    assert one(db, sql) == expected


@pytest.mark.parametrize(("value", "expected"), [("2.5", 3), ("7.5 * 1", 8), ("2.5::float", 2), ("i", 15)])
def test_insert_select_into_integer_rounds_by_type(db, value, expected):
    db.execute("UPDATE t SET i = 15 WHERE id = 3")
    assert one(db, f"INSERT INTO t (id, i) SELECT 10, {value} FROM t WHERE id = 3 RETURNING i") == expected
