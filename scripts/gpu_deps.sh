#!/usr/bin/env bash
# Assembles .gpudeps/: what a GPU machine with a pip CUDA torch but without Debian's -dev packages (seen: Ubuntu 24.04
# with fmt, yaml-cpp, CLI11, nlohmann-json, zstd and OpenSSL, and nothing else hearth needs) lacks to build hearth,
# copied from this Debian 12 machine after scripts/install_deps.sh --test: headers, shared libraries and their
# dependencies, pkg-config files (paths relative to the folder), Catch2 v2's CMake package, Gloo's headers.
# scripts/gpu_check.sh uses it there; carry the folder with the tree (about 35 MB).
set -euo pipefail
cd "$(dirname "$0")/.."
D=${1:-.gpudeps}
L=/usr/lib/x86_64-linux-gnu
rm -rf "$D" && mkdir -p "$D/include/poppler" "$D/include/catch2" "$D/include/glib-2.0-lib" "$D/lib/cmake" "$D/pkgconfig" "$D/gloo"
I=/usr/include
cp $I/pcre2.h $I/httplib.h $I/histedit.h $I/gumbo.h $I/tag_enum.h $I/utf8proc.h "$D/include/"
cp -r $I/editline $I/brotli $I/gmime-3.0 $I/glib-2.0 "$D/include/"
cp -r $I/poppler/cpp "$D/include/poppler/"
cp $L/glib-2.0/include/glibconfig.h "$D/include/glib-2.0-lib/"
cp $I/catch2/catch.hpp "$D/include/catch2/"
cp -r /usr/lib/cmake/Catch2 "$D/lib/cmake/" && cp /usr/lib/libCatch2WithMain.a "$D/lib/"
cp -r $I/gloo "$D/gloo/"
libs="libpcre2-8.so.0 libedit.so.2 libpoppler-cpp.so.0 libcpp-httplib.so.0.11 libgmime-3.0.so.0 libgumbo.so.1
  libutf8proc.so.2 libgio-2.0.so.0 libgobject-2.0.so.0 libglib-2.0.so.0"
for so in $libs; do cp -L $L/$so "$D/lib/"; ln -sf $so "$D/lib/${so%%.so*}.so"; done
# Their dependencies (the GPU machine's own copies win where it has them: gpu_check.sh links those instead).
for so in $(cd $L && ldd $libs | awk '/=>/{print $1}' | sort -u); do
  case $so in libc.so* | libm.so* | libgcc_s* | libstdc++*) ;; *) [ -e "$D/lib/$so" ] || cp -L $L/$so "$D/lib/" 2>/dev/null || cp -L /lib/x86_64-linux-gnu/$so "$D/lib/" ;; esac
done
pc() { printf 'prefix=${pcfiledir}/..\nName: %s\nDescription: copied from Debian 12\nVersion: %s\nLibs: -L${prefix}/lib %s\nCflags: -I${prefix}/include %s\n' "$1" "$2" "$3" "$4" >"$D/pkgconfig/$1.pc"; }
pc libpcre2-8 "$(pkg-config --modversion libpcre2-8)" -lpcre2-8 ""
pc libedit 3.1 -ledit '-I${prefix}/include/editline'
pc poppler-cpp "$(pkg-config --modversion poppler-cpp)" -lpoppler-cpp '-I${prefix}/include/poppler/cpp'
pc cpp-httplib "$(pkg-config --modversion cpp-httplib)" -lcpp-httplib \
  "-DCPPHTTPLIB_OPENSSL_SUPPORT -DCPPHTTPLIB_ZLIB_SUPPORT -DCPPHTTPLIB_BROTLI_SUPPORT"
pc gmime-3.0 "$(pkg-config --modversion gmime-3.0)" "-lgmime-3.0 -lgio-2.0 -lgobject-2.0 -lglib-2.0" \
  '-I${prefix}/include/gmime-3.0 -I${prefix}/include/glib-2.0 -I${prefix}/include/glib-2.0-lib -pthread'
pc gumbo "$(pkg-config --modversion gumbo)" -lgumbo ""
pc libutf8proc "$(pkg-config --modversion libutf8proc)" -lutf8proc "-DUTF8PROC_EXPORTS"
du -sh "$D"
