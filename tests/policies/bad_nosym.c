/* A real shared object that is not a policy: it lacks pfs_policy_v1. */
int bad_nosym_answer(void);

int bad_nosym_answer(void)
{
	return 42;
}
