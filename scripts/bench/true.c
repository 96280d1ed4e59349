/* The musl start-up case's /bin/true (case 8): a program that does nothing,
 * built with musl-gcc as a dynamic executable, so that a preloaded library
 * is loaded into it by musl's loader. (busybox-static's true is static: no
 * loader, no preload.) */
int main(void) { return 0; }
