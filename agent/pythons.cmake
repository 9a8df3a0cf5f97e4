# pythons.cmake - find the Python interpreters the agent is built and tested for.
#
# Candidates: python3 on PATH, /usr/bin/python3, $HOME/.pyenv/versions/*/bin/python3,
# /opt/pmt-top-py314/bin/python3.14 (a wrapper script) and the cache list
# PMT_EXTRA_PYTHONS. Each is asked for its version, sys.executable, headers and
# extension suffix; versions below 3.8 and duplicates (same real executable)
# are dropped. The result is kept in global properties so that every directory
# that includes this file (agent/, tests/agent) sees the same list:
#
#   PMT_PYTHONS                 interpreters (commands to run), in probe order
#   PMT_PY_<id>_VERSION         e.g. 3.11.7       (<id>: pmt_python_id(<python>))
#   PMT_PY_<id>_EXT_SUFFIX      e.g. .cpython-311-x86_64-linux-gnu.so
#   PMT_PY_<id>_INCLUDE         include dirs when Python.h exists, else empty
#   PMT_PY_<id>_NATIVE          ON when the agent CMakeLists built native modules for it
#   PMT_NATIVE_DIR              ${CMAKE_BINARY_DIR}/agent-native
#
# pmt_python_get(<python> <field> <outvar>) reads one field.
# pmt_python_tag(<python> <listvar> <outvar>) gives a test-name tag (its
# version, "-2", "-3"... when two interpreters share one) and records it in
# <listvar>.

set(PMT_EXTRA_PYTHONS "" CACHE STRING "More Python interpreters (>= 3.8) to build and test the agent for")

function(pmt_python_id py out)
  string(MAKE_C_IDENTIFIER "${py}" id)
  set(${out} "${id}" PARENT_SCOPE)
endfunction()

function(pmt_python_get py field out)
  pmt_python_id("${py}" id)
  get_property(v GLOBAL PROPERTY PMT_PY_${id}_${field})
  set(${out} "${v}" PARENT_SCOPE)
endfunction()

function(pmt_python_tag py used out)
  pmt_python_get("${py}" VERSION ver)
  set(tag ${ver})
  set(n 2)
  while(tag IN_LIST ${used})
    set(tag ${ver}-${n})
    math(EXPR n "${n} + 1")
  endwhile()
  set(${used} ${${used}} ${tag} PARENT_SCOPE)
  set(${out} ${tag} PARENT_SCOPE)
endfunction()

get_property(_pmt_pythons_done GLOBAL PROPERTY PMT_PYTHONS_DONE)
if(NOT _pmt_pythons_done)
  set(_cands "")
  find_program(_pmt_path_python3 NAMES python3 NO_CACHE)
  if(_pmt_path_python3)
    list(APPEND _cands "${_pmt_path_python3}")
  endif()
  list(APPEND _cands /usr/bin/python3)
  file(GLOB _pyenv LIST_DIRECTORIES false "$ENV{HOME}/.pyenv/versions/*/bin/python3")
  list(SORT _pyenv COMPARE NATURAL)
  list(APPEND _cands ${_pyenv})
  list(APPEND _cands /opt/pmt-top-py314/bin/python3.14 ${PMT_EXTRA_PYTHONS})

  set(_probe [=[
import sys
if sys.version_info < (3, 8):
    print("old")
    raise SystemExit(0)
import os, sysconfig
inc = []
for d in (sysconfig.get_paths().get("include"), sysconfig.get_config_var("INCLUDEPY")):
    if d and os.path.isfile(os.path.join(d, "Python.h")):
        inc = [d, os.path.dirname(d)]
        break
print("ok")
print("%d.%d.%d" % sys.version_info[:3])
print(os.path.realpath(sys.executable))
print(sysconfig.get_config_var("EXT_SUFFIX") or "")
print(";".join(inc))
]=])
  set(_found "")
  set(_seen "")
  foreach(py IN LISTS _cands)
    if(NOT EXISTS "${py}" OR IS_DIRECTORY "${py}")
      continue()
    endif()
    execute_process(COMMAND "${py}" -c "${_probe}" OUTPUT_VARIABLE _out ERROR_QUIET
                    RESULT_VARIABLE _rc TIMEOUT 20)
    if(NOT _rc EQUAL 0)
      continue()
    endif()
    string(REPLACE "\n" ";" _lines "${_out}")
    list(LENGTH _lines _n)
    if(_n LESS 5)
      continue()
    endif()
    list(GET _lines 0 _status)
    if(NOT _status STREQUAL "ok")
      continue()
    endif()
    list(GET _lines 1 _ver)
    list(GET _lines 2 _real)
    list(GET _lines 3 _suffix)
    list(SUBLIST _lines 4 -1 _inc)
    list(FILTER _inc EXCLUDE REGEX "^$")
    if(_real IN_LIST _seen)
      continue()
    endif()
    list(APPEND _seen "${_real}")
    if(py MATCHES "/shims/")
      set(py "${_real}")     # a pyenv shim picks its version per directory: pin it
    endif()
    list(APPEND _found "${py}")
    pmt_python_id("${py}" _id)
    set_property(GLOBAL PROPERTY PMT_PY_${_id}_VERSION "${_ver}")
    set_property(GLOBAL PROPERTY PMT_PY_${_id}_EXT_SUFFIX "${_suffix}")
    set_property(GLOBAL PROPERTY PMT_PY_${_id}_INCLUDE "${_inc}")
    set_property(GLOBAL PROPERTY PMT_PY_${_id}_NATIVE OFF)
    if(_inc)
      message(STATUS "pmt-top agent: Python ${_ver} at ${py}")
    else()
      message(STATUS "pmt-top agent: Python ${_ver} at ${py} (no headers: no native module)")
    endif()
  endforeach()
  set_property(GLOBAL PROPERTY PMT_PYTHONS "${_found}")
  set_property(GLOBAL PROPERTY PMT_PYTHONS_DONE TRUE)
endif()

get_property(PMT_PYTHONS GLOBAL PROPERTY PMT_PYTHONS)
set(PMT_NATIVE_DIR "${CMAKE_BINARY_DIR}/agent-native")
