// Uses the server the project's global setup started (see test/global-setup.js).
test('the shared server from global setup answers', async () => {
  const response = await fetch(`${process.env.EXAMPLE_API_URL}/api`);
  expect(await response.text()).toBe('welcome, api');
});
