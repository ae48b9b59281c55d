#!/usr/bin/python3
"""Reads a report file with Python's own readers and prints its cells, one token a line, for the
C++ tests to compare:

  usage: read_back.py csv|jsonl|xlsx FILE

  sheet <hex name>            xlsx: a worksheet starts
  freeze <cell or ->          xlsx: the sheet's frozen-pane cell
  bold <0|1>                  xlsx: 1 if every header cell is bold
  row                         a row starts
  k <hex key>                 jsonl: the key of the value on the next line
  s <hex utf-8>               a string
  i <int>                     an integer
  f <repr>                    a float
  b <0|1>                     a boolean
  d <iso datetime>            xlsx: a date cell
  n                           empty / null

Exits non-zero (with a traceback) if the reader rejects the file.
"""
import csv
import datetime
import json
import sys


def token(v):
    if v is None:
        return "n"
    if isinstance(v, bool):
        return "b %d" % v
    if isinstance(v, int):
        return "i %d" % v
    if isinstance(v, float):
        return "f %r" % v
    if isinstance(v, datetime.datetime):
        # Excel keeps times as fractions of a day; seconds are what we write.
        v = (v + datetime.timedelta(microseconds=500000)).replace(microsecond=0)
        return "d " + v.isoformat()
    if isinstance(v, str):
        return "s " + v.encode("utf-8").hex()
    raise TypeError(type(v))


def main():
    mode, path = sys.argv[1], sys.argv[2]
    out = []
    if mode == "csv":
        with open(path, newline="", encoding="utf-8") as f:
            for row in csv.reader(f, strict=True):
                out.append("row")
                out.extend(token(v) for v in row)
    elif mode == "jsonl":
        with open(path, "rb") as f:
            data = f.read()
        text = data.decode("utf-8")  # strict: invalid UTF-8 fails here
        lines = text.split("\n")
        if lines[-1] != "":
            raise ValueError("last line has no newline")
        for line in lines[:-1]:
            obj = json.loads(line, object_pairs_hook=lambda pairs: pairs,
                             parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
            out.append("row")
            for key, value in obj:
                out.append("k " + key.encode("utf-8").hex())
                out.append(token(value))
    elif mode == "xlsx":
        import openpyxl
        from openpyxl.utils.escape import unescape

        # openpyxl leaves the OOXML escapes "_xHHHH_" of inline strings as they are; Excel and
        # LibreOffice turn them into the character. Read them as a spreadsheet would.
        def cell(v):
            return unescape(v) if isinstance(v, str) else v
        wb = openpyxl.load_workbook(path)
        for ws in wb.worksheets:
            out.append("sheet " + ws.title.encode("utf-8").hex())
            out.append("freeze " + (ws.freeze_panes or "-"))
            header = next(ws.iter_rows(min_row=1, max_row=1), ())
            out.append("bold %d" % int(bool(header) and all(c.font.b for c in header)))
            for row in ws.iter_rows(values_only=True):
                out.append("row")
                out.extend(token(cell(v)) for v in row)
    else:
        raise SystemExit("unknown mode " + mode)
    sys.stdout.write("\n".join(out) + "\n")


main()
