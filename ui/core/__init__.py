"""Shared pieces every view builds on: the hub bridge, the runner that starts coroutines from
Qt slots, the table-model base, and the fonts, colours and text formatting the views have in
common.
"""
