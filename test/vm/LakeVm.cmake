# LakeVm.cmake - register CTest tests that run inside the LAKE test VM.
#
# The top-level CMakeLists.txt does include(test/vm/LakeVm.cmake); any
# directory may then call
#
#   lake_add_vm_test(NAME <name> RUN <script>
#                    [FILES <src[:/dest]>...] [KMODS <module>...]
#                    [TIMEOUT <seconds>] [MEM <MB>] [APPEND <kernel args>]
#                    [DEPENDS <targets>...] [LABELS <labels>...])
#
# which adds test <name> (labels "vm" plus LABELS) running
#   test/vm/lake-vm.sh --timeout <TIMEOUT> --out <bindir>/vm-out/<name>
#                      --file <f>... --kmod <m>... --run <script>
# RUN is relative to the calling CMakeLists.txt's source directory; FILES
# may be generator expressions ($<TARGET_FILE:x>, optionally followed by
# :/dest) and, when relative, are relative to its binary directory.  TIMEOUT
# (default 300) bounds the VM, boot included.  DEPENDS names build targets
# that must be up to date before the test runs: each becomes a CTest fixture
# that runs `cmake --build . --target <t>` once.  All VM tests share one
# RESOURCE_LOCK so that only one VM runs at a time.
include_guard(GLOBAL)

set(LAKE_VM_DIR "${CMAKE_CURRENT_LIST_DIR}")
set(LAKE_VM_SH "${CMAKE_CURRENT_LIST_DIR}/lake-vm.sh")

# The kernel the VM boots and its Kbuild tree (empty if none is installed).
execute_process(COMMAND "${LAKE_VM_DIR}/kver.sh"
  OUTPUT_VARIABLE LAKE_VM_KVER OUTPUT_STRIP_TRAILING_WHITESPACE
  RESULT_VARIABLE _lake_vm_kver_rc ERROR_QUIET)
if(_lake_vm_kver_rc EQUAL 0)
  set(LAKE_VM_KBUILD_DIR "/lib/modules/${LAKE_VM_KVER}/build")
else()
  set(LAKE_VM_KVER "")
  set(LAKE_VM_KBUILD_DIR "")
  message(STATUS "LAKE VM tests: no Debian kernel + headers found (scripts/install-deps.sh)")
endif()
unset(_lake_vm_kver_rc)

function(lake_add_vm_test)
  cmake_parse_arguments(PARSE_ARGV 0 VM ""
    "NAME;RUN;TIMEOUT;MEM;APPEND" "FILES;KMODS;DEPENDS;LABELS")
  if(VM_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "lake_add_vm_test: unknown arguments: ${VM_UNPARSED_ARGUMENTS}")
  endif()
  if(NOT VM_NAME OR NOT VM_RUN)
    message(FATAL_ERROR "lake_add_vm_test: NAME and RUN are required")
  endif()
  if(NOT VM_TIMEOUT)
    set(VM_TIMEOUT 300)
  endif()
  if(NOT IS_ABSOLUTE "${VM_RUN}")
    set(VM_RUN "${CMAKE_CURRENT_SOURCE_DIR}/${VM_RUN}")
  endif()

  set(args --quiet --timeout ${VM_TIMEOUT}
    --out "${CMAKE_CURRENT_BINARY_DIR}/vm-out/${VM_NAME}")
  if(VM_MEM)
    list(APPEND args --mem ${VM_MEM})
  endif()
  if(VM_APPEND)
    list(APPEND args --append "${VM_APPEND}")
  endif()
  foreach(f IN LISTS VM_FILES)
    list(APPEND args --file "${f}")
  endforeach()
  foreach(m IN LISTS VM_KMODS)
    list(APPEND args --kmod "${m}")
  endforeach()

  add_test(NAME ${VM_NAME}
    COMMAND "${LAKE_VM_SH}" ${args} --run "${VM_RUN}"
    WORKING_DIRECTORY "${CMAKE_CURRENT_BINARY_DIR}")
  _lake_vm_test_setup(${VM_NAME} ${VM_TIMEOUT} "${VM_LABELS}" ${VM_DEPENDS})
endfunction()

# _lake_vm_test_setup(<test> <timeout> <labels> <targets>...): labels vm and
# <labels>, CTest's limit (<timeout> + 60 s: time to build the initramfs and
# report), the one-VM-at-a-time lock, and a fixture per target that brings
# it up to date (`cmake --build . --target <t>`, once).
function(_lake_vm_test_setup VM_NAME VM_TIMEOUT VM_LABELS)
  set(VM_DEPENDS ${ARGN})
  math(EXPR ctest_timeout "${VM_TIMEOUT} + 60")
  set_tests_properties(${VM_NAME} PROPERTIES
    LABELS "vm;${VM_LABELS}"
    TIMEOUT ${ctest_timeout}
    RESOURCE_LOCK lake_vm)
  set(fixtures "")
  foreach(t IN LISTS VM_DEPENDS)
    set(fx "lake_vm_build_${t}")
    get_property(known GLOBAL PROPERTY LAKE_VM_BUILD_FIXTURES)
    if(NOT fx IN_LIST known)
      set_property(GLOBAL APPEND PROPERTY LAKE_VM_BUILD_FIXTURES ${fx})
      set(build_cmd "${CMAKE_COMMAND}" --build "${CMAKE_BINARY_DIR}" --target ${t})
      get_property(multi GLOBAL PROPERTY GENERATOR_IS_MULTI_CONFIG)
      if(multi)
        list(APPEND build_cmd --config $<CONFIG>)
      endif()
      add_test(NAME ${fx} COMMAND ${build_cmd})
      set_tests_properties(${fx} PROPERTIES
        FIXTURES_SETUP ${fx}
        LABELS "vm;build"
        RESOURCE_LOCK lake_build)
    endif()
    list(APPEND fixtures ${fx})
  endforeach()
  if(fixtures)
    set_tests_properties(${VM_NAME} PROPERTIES FIXTURES_REQUIRED "${fixtures}")
  endif()
endfunction()

# lake_add_vm_driver_test(NAME <name> COMMAND <program> [args...]
#                         [TIMEOUT <seconds>] [DEPENDS <targets>...])
# A VM test whose host side does more than lake-vm.sh alone (the VM bridge:
# a daemon on the host, test/vm/bridge/bridge.sh): <program> runs lake-vm.sh
# itself.  Labels, lock and build fixtures as for lake_add_vm_test().
function(lake_add_vm_driver_test)
  cmake_parse_arguments(PARSE_ARGV 0 VM "" "NAME;TIMEOUT" "COMMAND;DEPENDS")
  if(NOT VM_NAME OR NOT VM_COMMAND)
    message(FATAL_ERROR "lake_add_vm_driver_test: NAME and COMMAND are required")
  endif()
  if(NOT VM_TIMEOUT)
    set(VM_TIMEOUT 300)
  endif()
  add_test(NAME ${VM_NAME} COMMAND ${VM_COMMAND} WORKING_DIRECTORY "${CMAKE_CURRENT_BINARY_DIR}")
  _lake_vm_test_setup(${VM_NAME} ${VM_TIMEOUT} "" ${VM_DEPENDS})
endfunction()
