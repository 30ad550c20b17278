#!/bin/sh
# {{hook}} hook written by `seq-test init`.
{{guard}}
{{body}}
