import { createApp } from 'vue';
import { createPinia } from 'pinia';
import App from './App.vue';
import './styles.css';
import { api } from './api/client';

api.connect();

createApp(App).use(createPinia()).mount('#app');
