"""How ``sample_problems.jsonl`` was made: every answer and expected output below is computed, not
typed. Regenerate with ``python startui/data/make_sample_problems.py`` (needs sympy);
tests/test_problems.py checks that the file still matches.
"""

from __future__ import annotations

import itertools
import json
import math
from fractions import Fraction
from pathlib import Path
from typing import Any

import sympy

OUT = Path(__file__).parent / "sample_problems.jsonl"


def _fib(n: int) -> int:
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


def _coin_ways(total: int, coins: tuple[int, ...]) -> int:
    ways = [1] + [0] * total
    for c in coins:
        for v in range(c, total + 1):
            ways[v] += ways[v - c]
    return ways[total]


def _trailing_zeros(n: int) -> int:
    s = 0
    while n:
        n //= 5
        s += n
    return s


def _math() -> list[tuple[str, str, Any]]:
    x = sympy.symbols("x")
    return [
        ("primes-below-1000", "What is the sum of all prime numbers below 1000?",
         sum(sympy.primerange(2, 1000))),
        ("divisors-10-factorial", "How many positive divisors does $10!$ have?",
         sympy.divisor_count(math.factorial(10))),
        ("7-pow-2024", "What are the last three digits of $7^{2024}$? Give them as a number.",
         pow(7, 2024, 1000)),
        ("div-3-or-5-not-7", "How many integers from 1 to 10{,}000 inclusive are divisible by 3 "
         "or by 5 but not by 7?",
         sum(1 for n in range(1, 10001) if (n % 3 == 0 or n % 5 == 0) and n % 7)),
        ("fibonacci-30", "The Fibonacci numbers are $F_1 = F_2 = 1$ and "
         "$F_{n} = F_{n-1} + F_{n-2}$. What is $F_{30}$?", _fib(30)),
        ("digit-sum-2-pow-100", "What is the sum of the decimal digits of $2^{100}$?",
         sum(map(int, str(2**100)))),
        ("coins-one-dollar", "In how many ways can you make 100 cents from pennies (1), nickels "
         "(5), dimes (10) and quarters (25)?", _coin_ways(100, (1, 5, 10, 25))),
        ("self-powers-mod-100", "What are the last two digits of "
         "$1^1 + 2^2 + 3^3 + \\cdots + 100^{100}$? Give them as a number.",
         sum(k**k for k in range(1, 101)) % 100),
        ("factorial-100-zeros", "What is the smallest positive integer $n$ such that $n!$ ends in "
         "at least 100 zeros?", next(n for n in range(1, 10**4) if _trailing_zeros(n) >= 100)),
        ("telescoping-sum", "Compute $\\sum_{k=1}^{20} \\frac{1}{k(k+1)}$ as a fraction in "
         "lowest terms.", sum(Fraction(1, k * (k + 1)) for k in range(1, 21))),
        ("lattice-points-circle", "How many points $(x, y)$ with integer coordinates satisfy "
         "$x^2 + y^2 \\le 100$?",
         sum(1 for i in range(-10, 11) for j in range(-10, 11) if i * i + j * j <= 100)),
        ("three-dice-ten", "Three fair six-sided dice are rolled. What is the probability that "
         "their sum is 10? Give a fraction in lowest terms.",
         Fraction(sum(1 for t in itertools.product(range(1, 7), repeat=3) if sum(t) == 10),
                  216)),
        ("integral-x2-exp", "Evaluate $\\int_0^1 x^2 e^x \\, dx$ exactly.",
         sympy.integrate(x**2 * sympy.exp(x), (x, 0, 1))),
        ("palindromes-div-11", "How many five-digit palindromes are divisible by 11?",
         sum(1 for n in range(10000, 100000) if str(n) == str(n)[::-1] and n % 11 == 0)),
        ("order-of-2-mod-1001", "What is the smallest positive integer $n$ such that $2^n - 1$ "
         "is divisible by 1001?", next(n for n in range(1, 2000) if pow(2, n, 1001) == 1)),
        ("subsets-sum-div-5", "How many subsets of $\\{1, 2, \\ldots, 15\\}$ (including the "
         "empty set) have a sum divisible by 5?",
         sum(1 for r in range(16) for s in itertools.combinations(range(1, 16), r)
             if sum(s) % 5 == 0)),
    ]


def _fmt(v: Any) -> str:
    if isinstance(v, Fraction):
        return f"\\frac{{{v.numerator}}}{{{v.denominator}}}"
    if isinstance(v, sympy.Basic) and not v.is_Integer:
        return sympy.latex(v).replace("-2 + e", "e - 2")  # the way a person writes it
    return str(v)


def _max_subarray(nums: list[int]) -> int:
    best = cur = nums[0]
    for v in nums[1:]:
        cur = max(v, cur + v)
        best = max(best, cur)
    return best


def _balanced(s: str) -> bool:
    stack: list[str] = []
    pairs = {")": "(", "]": "[", "}": "{"}
    for ch in s:
        if ch in "([{":
            stack.append(ch)
        elif ch in pairs and (not stack or stack.pop() != pairs[ch]):
            return False
    return not stack


def _rle(s: str) -> str:
    return "".join(f"{k}{len(list(g))}" for k, g in itertools.groupby(s))


def _code() -> list[dict[str, Any]]:
    arrays = [[-2, 1, -3, 4, -1, 2, 1, -5, 4], [5], [-3, -1, -2], [2, -1, 2, 3, -9, 4],
              list(range(-50, 51))]
    brackets = ["", "()", "([]{})", "(]", "((", "a(b)c[d]{e}", "}{", "([)]"]
    runs = ["", "a", "aaabcc", "abc", "zzzzzzzzzzzz", "aabbaa"]
    return [
        {"id": "max-subarray", "kind": "code",
         "question": "Read an integer $n$ and then $n$ integers (on the next line, separated by "
                     "spaces). Print the largest sum of a non-empty contiguous subarray.",
         "tests": [{"type": "stdio", "input": f"{len(a)}\n{' '.join(map(str, a))}\n",
                    "output": f"{_max_subarray(a)}\n"} for a in arrays]},
        {"id": "count-primes", "kind": "code",
         "question": "Read an integer $N$ ($1 \\le N \\le 10^6$) and print how many prime numbers "
                     "are less than or equal to $N$. It must run in under a second for "
                     "$N = 10^6$.",
         "tests": [{"type": "stdio", "input": f"{n}\n", "output": f"{int(sympy.primepi(n))}\n"}
                   for n in (1, 2, 10, 100, 1000000)]},
        {"id": "balanced-brackets", "kind": "code",
         "question": "Write a function `is_balanced(s: str) -> bool` that returns True when every "
                     "bracket `()`, `[]`, `{}` in `s` is closed in the right order (other "
                     "characters are ignored).",
         "starter_code": "def is_balanced(s: str) -> bool:\n    ...\n",
         "tests": [{"type": "function", "fn_name": "is_balanced", "args": [s],
                    "expected": _balanced(s)} for s in brackets]},
        {"id": "run-length-encoding", "kind": "code",
         "question": "Write a function `rle(s: str) -> str` that run-length encodes a string: each "
                     "run of a repeated character becomes the character followed by the run "
                     "length, e.g. `rle(\"aaabcc\") == \"a3b1c2\"`. The empty string encodes to "
                     "the empty string.",
         "starter_code": "def rle(s: str) -> str:\n    ...\n",
         "tests": [{"type": "function", "fn_name": "rle", "args": [s], "expected": _rle(s)}
                   for s in runs]},
    ]


def rows() -> list[dict[str, Any]]:
    return [{"id": pid, "question": q, "answer": _fmt(a), "kind": "math"}
            for pid, q, a in _math()] + _code()


def render() -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows())


if __name__ == "__main__":
    OUT.write_text(render(), encoding="utf-8")
