/* Call sites to name: C functions in a shared library that tests/symbolize.rs
 * builds, strips and splits in the ways real libraries are shipped.
 *
 * hidden_helper is static, so only .symtab (or a debug file) knows it, and it
 * lies between two exported functions: a stripped library must leave it
 * unnamed rather than call it alpha. Built with -DREPLACED, the library is a
 * later build of the "same" file whose functions sit elsewhere. */

#ifdef REPLACED
int replacement_padding(int x)
{
    int sum = 0;
    for (int i = 0; i < x; i++)
        sum += i * x + (sum >> 3);
    return sum;
}
#endif

static int hidden_helper(int x);

int alpha(int x)
{
    return hidden_helper(x) + 2;
}

static int hidden_helper(int x)
{
    return x * 3 + 1;
}

int beta(int x)
{
    return alpha(x) * 2;
}
