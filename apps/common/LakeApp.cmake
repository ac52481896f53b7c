# LakeApp.cmake - building an app on the workload kit (apps/common): its
# embedded GPU image, its built-in weights, its two programs and its kernel
# module.  docs/apps.md explains the kit; apps/linnos/CMakeLists.txt is an
# example.
#
#   lake_add_app(NAME linnos MODULE lake_linnos CUDA linnos.cu
#                SOURCES linnos.c [FPU_SOURCES mllb_fpu.c]
#                [HEADERS linnos.h]
#                [WEIGHTS s64|float SYMBOL_PREFIX FILE_STEM data/weights.txt]...)
#
# builds
#   lake-NAME         the program on liblake (the remoted path)
#   lake-NAME-direct  the program on the vendor's libcuda (where cuda.h and
#                     libcuda's stub are installed): the direct-CUDA baseline
#   MODULE.ko         the kernel module through lake.ko (where lake.ko builds),
#                     target MODULE, from the app's Kbuild
# all from the same sources, with the GPU code of CUDA built by nvcc into a
# fatbin (sm_80, sm_90 and compute_90 PTX) and embedded as NAME_fatbin.
include_guard(GLOBAL)
find_package(Threads REQUIRED)

set(LAKE_APP_KIT_DIR ${CMAKE_CURRENT_LIST_DIR})
find_program(LAKE_NVCC nvcc PATHS ${LAKE_CUDA_HOME}/bin NO_DEFAULT_PATH)
find_library(LAKE_CUDA_STUB cuda PATHS ${LAKE_CUDA_HOME}/lib64/stubs NO_DEFAULT_PATH)
find_path(LAKE_CUDA_INC cuda.h PATHS ${LAKE_CUDA_HOME}/include NO_DEFAULT_PATH)
if(NOT LAKE_NVCC)
  message(STATUS "apps: no nvcc in ${LAKE_CUDA_HOME}/bin: the apps are built without GPU kernels (CPU path only)")
endif()
if(NOT LAKE_CUDA_INC OR NOT LAKE_CUDA_STUB)
  message(STATUS "apps: SKIPPED the direct-CUDA programs (need cuda.h and libcuda's stub in ${LAKE_CUDA_HOME})")
endif()

# nvcc: IEEE division and square root, no FMA contraction, no flush to zero:
# the GPU computes the CPU path's arithmetic, rounding for rounding.
set(LAKE_APP_NVCC_FLAGS
  -gencode arch=compute_80,code=sm_80
  -gencode arch=compute_90,code=sm_90
  -gencode arch=compute_90,code=compute_90
  -O3 --fmad=false -prec-div=true -prec-sqrt=true -ftz=false)
# The FPU files' flags, the same as lake_app.kbuild's for the kernel.
set(LAKE_APP_FPU_FLAGS -msse -msse2 -mfpmath=sse -ffp-contract=off -fno-math-errno)

# lake_app_fatbin(NAME CU [DEPENDS...]): NAME_fatbin.c (symbols NAME_fatbin,
# NAME_fatbin_size) in the current binary directory; its path in
# LAKE_APP_FATBIN_C.  Without nvcc the image is empty (the GPU path says so).
function(lake_app_fatbin name cu)
  set(c ${CMAKE_CURRENT_BINARY_DIR}/${name}_fatbin.c)
  get_filename_component(cu ${cu} ABSOLUTE)
  if(LAKE_NVCC)
    set(fb ${CMAKE_CURRENT_BINARY_DIR}/${name}.fatbin)
    add_custom_command(OUTPUT ${fb}
      COMMAND ${LAKE_NVCC} -fatbin ${LAKE_APP_NVCC_FLAGS} -I${LAKE_APP_KIT_DIR}
              -I${CMAKE_CURRENT_SOURCE_DIR} -o ${fb} ${cu}
      DEPENDS ${cu} ${LAKE_APP_KIT_DIR}/lake_app_kernels.cuh ${LAKE_APP_KIT_DIR}/lake_math.h ${ARGN}
      COMMENT "nvcc: ${name}.fatbin (sm_80, sm_90, compute_90 PTX)"
      VERBATIM)
    set(img ${fb})
  else()
    set(fb "")
    set(img -)
  endif()
  add_custom_command(OUTPUT ${c}
    COMMAND ${LAKE_PYTHON} ${LAKE_APP_KIT_DIR}/embed.py ${name}_fatbin ${img} ${c}
    DEPENDS ${fb} ${LAKE_APP_KIT_DIR}/embed.py
    COMMENT "embed: ${name}_fatbin.c"
    VERBATIM)
  set(LAKE_APP_FATBIN_C ${c} PARENT_SCOPE)
endfunction()

function(lake_add_app)
  cmake_parse_arguments(A "" "NAME;MODULE;CUDA" "SOURCES;FPU_SOURCES;HEADERS;WEIGHTS" ${ARGN})
  set(src ${CMAKE_CURRENT_SOURCE_DIR})
  set(bin ${CMAKE_CURRENT_BINARY_DIR})
  set(headers "")
  foreach(h ${A_HEADERS})
    list(APPEND headers ${src}/${h})
  endforeach()
  lake_app_fatbin(${A_NAME} ${A_CUDA} ${headers})
  set(generated ${LAKE_APP_FATBIN_C})
  set(fpu_generated "")

  # Built-in weights: groups of TYPE SYMBOL_PREFIX FILE_STEM DATA.
  list(LENGTH A_WEIGHTS nw)
  set(i 0)
  while(i LESS nw)
    list(SUBLIST A_WEIGHTS ${i} 4 w)
    list(GET w 0 type)
    list(GET w 1 sym)
    list(GET w 2 stem)
    list(GET w 3 data)
    get_filename_component(data ${data} ABSOLUTE)
    add_custom_command(OUTPUT ${bin}/${stem}.c ${bin}/${stem}.h
      COMMAND ${LAKE_PYTHON} ${LAKE_APP_KIT_DIR}/weights2c.py ${type} ${sym} ${data}
              ${bin}/${stem}.c ${bin}/${stem}.h
      DEPENDS ${data} ${LAKE_APP_KIT_DIR}/weights2c.py
      COMMENT "weights2c: ${stem}.c"
      VERBATIM)
    list(APPEND generated ${bin}/${stem}.c ${bin}/${stem}.h)
    if(type STREQUAL "float")
      list(APPEND fpu_generated ${bin}/${stem}.c)
    endif()
    math(EXPR i "${i} + 4")
  endwhile()

  set(fpu "")
  foreach(f ${A_FPU_SOURCES})
    list(APPEND fpu ${src}/${f})
  endforeach()
  set(plain "")
  foreach(f ${A_SOURCES})
    list(APPEND plain ${src}/${f})
  endforeach()
  set_source_files_properties(${fpu} ${fpu_generated} ${LAKE_APP_KIT_DIR}/lake_app_fpu.c
    PROPERTIES COMPILE_OPTIONS "${LAKE_APP_FPU_FLAGS}")
  set(srcs ${LAKE_APP_KIT_DIR}/lake_app.c ${LAKE_APP_KIT_DIR}/lake_app_fpu.c
      ${LAKE_APP_KIT_DIR}/lake_app_prog.c ${plain} ${fpu} ${generated})

  # -O2 whatever the build type: the CPU path is measured.  Callbacks have
  # the kit's fixed signatures, hence no unused-parameter warnings.
  set(opts -O2 -Wall -Wextra -Wno-unused-parameter -Werror)
  add_executable(lake-${A_NAME} ${srcs})
  target_include_directories(lake-${A_NAME} PRIVATE ${LAKE_APP_KIT_DIR} ${src} ${bin})
  target_compile_options(lake-${A_NAME} PRIVATE ${opts})
  target_link_libraries(lake-${A_NAME} PRIVATE lake Threads::Threads)
  set(programs lake-${A_NAME})
  if(LAKE_CUDA_INC AND LAKE_CUDA_STUB)
    add_executable(lake-${A_NAME}-direct ${srcs})
    target_compile_definitions(lake-${A_NAME}-direct PRIVATE LAKE_APP_DIRECT)
    target_include_directories(lake-${A_NAME}-direct PRIVATE ${LAKE_APP_KIT_DIR} ${src} ${bin}
                               ${LAKE_CUDA_INC})
    target_compile_options(lake-${A_NAME}-direct PRIVATE ${opts})
    target_link_libraries(lake-${A_NAME}-direct PRIVATE ${LAKE_CUDA_STUB} Threads::Threads)
    list(APPEND programs lake-${A_NAME}-direct)
  endif()
  add_custom_target(${A_NAME}_programs DEPENDS ${programs})
  set_property(GLOBAL APPEND PROPERTY LAKE_APP_PROGRAM_TARGETS ${A_NAME}_programs)

  if(TARGET lake_kmod)
    set(kdir ${bin}/kmod)
    file(GLOB app_files ${src}/*.c ${src}/*.h)
    add_custom_command(
      OUTPUT ${kdir}/${A_MODULE}.ko
      COMMAND ${LAKE_APP_KIT_DIR}/build-kmod.sh ${LAKE_KDIR} ${kdir} ${LAKE_GEN_DIR}
              ${CMAKE_BINARY_DIR}/kmod ${src} ${generated} -- W=1
      DEPENDS ${app_files} ${src}/Kbuild ${generated}
              ${LAKE_APP_KIT_DIR}/lake_app.c ${LAKE_APP_KIT_DIR}/lake_app_kmod.c
              ${LAKE_APP_KIT_DIR}/lake_app_fpu.c ${LAKE_APP_KIT_DIR}/lake_app_fpu.h
              ${LAKE_APP_KIT_DIR}/lake_math.h
              ${LAKE_APP_KIT_DIR}/lake_app.h ${LAKE_APP_KIT_DIR}/lake_app_env.h
              ${LAKE_APP_KIT_DIR}/lake_app.kbuild ${LAKE_APP_KIT_DIR}/build-kmod.sh
              ${CMAKE_SOURCE_DIR}/include/lake/lake_kernel.h ${LAKE_GEN_DIR}/lake_cuda.h
              ${CMAKE_BINARY_DIR}/kmod/Module.symvers
      COMMENT "Kbuild: ${A_MODULE}.ko against ${LAKE_KDIR}"
      VERBATIM)
    add_custom_target(${A_MODULE} ALL DEPENDS ${kdir}/${A_MODULE}.ko)
    add_dependencies(${A_MODULE} lake_kmod lake_generated)
  endif()
endfunction()

# lake_app_cpu_test(NAME kleio ENV KLEIO SOURCES kleio_cpu.c kleio_io.c): with
# BUILD_TESTING, NAME-cpu-run (tests/NAME_cpu_run.c on the CPU path's own
# code) and the unit test unit_NAME, tests/test_NAME.py under pytest, given
# both programs as ENV_CPU_RUN and LAKE_ENV.
function(lake_app_cpu_test)
  cmake_parse_arguments(T "" "NAME;ENV" "SOURCES" ${ARGN})
  if(NOT BUILD_TESTING)
    return()
  endif()
  set(run ${T_NAME}-cpu-run)
  add_executable(${run} tests/${T_NAME}_cpu_run.c ${T_SOURCES} ${LAKE_APP_KIT_DIR}/lake_app.c)
  target_include_directories(${run} PRIVATE ${LAKE_APP_KIT_DIR} ${CMAKE_CURRENT_SOURCE_DIR}
                             ${LAKE_GEN_DIR} ${CMAKE_SOURCE_DIR}/include/lake)
  target_compile_options(${run} PRIVATE -O2 -Wall -Wextra -Werror)
  target_link_libraries(${run} PRIVATE lake)
  add_dependencies(${run} lake_generated)
  add_test(NAME unit_${T_NAME}
    COMMAND ${LAKE_PYTHON} -m pytest -q -p no:cacheprovider
            ${CMAKE_CURRENT_SOURCE_DIR}/tests/test_${T_NAME}.py)
  set_tests_properties(unit_${T_NAME} PROPERTIES LABELS unit TIMEOUT 600
    ENVIRONMENT "${T_ENV}_CPU_RUN=$<TARGET_FILE:${run}>;LAKE_${T_ENV}=$<TARGET_FILE:lake-${T_NAME}>")
endfunction()
